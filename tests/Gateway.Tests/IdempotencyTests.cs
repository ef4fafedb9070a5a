using System.Net;
using System.Text;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests;

public sealed class IdempotencyTests(RedisServer redis)
{
    private static HttpRequestMessage Post(string key, string json, string path = "/v1/generations") => new(HttpMethod.Post, path)
    {
        Content = new StringContent(json, Encoding.UTF8, "application/json"),
        Headers = { { "Idempotency-Key", $"\"{key}\"" } },
    };

    [Fact]
    public async Task TwentyConcurrentRepeatsOfOneKey_AcrossReplicas_SubmitOnce_AndAnswerTheSameGenerationOr409()
    {
        var client = new TestClient();
        await using var harness = await GatewayHarness.StartAsync(redis, settings: client.Settings, replicas: 3);
        var clients = Enumerable.Range(0, 3).Select(i => harness.Client(client.Key, replica: i)).ToArray();
        const string body = """{"prompt":"exactly once","num_images":2}""";

        var answers = await Task.WhenAll(Enumerable.Range(0, 20).Select(async i =>
        {
            using var response = await clients[i % 3].SendAsync(Post("order-42", body), TestContext.Current.CancellationToken);
            return (response.StatusCode, response.Headers, Text: await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        }));

        Assert.Equal(1, harness.Fal.SubmitCount);
        Assert.Equal(1, harness.Fal.AcceptedSubmitCount);
        var accepted = answers.Where(a => a.StatusCode == HttpStatusCode.Accepted).ToList();
        var inFlight = answers.Where(a => a.StatusCode == HttpStatusCode.Conflict).ToList();
        Assert.Equal(20, accepted.Count + inFlight.Count);
        Assert.NotEmpty(accepted);
        var first = accepted[0].Text;
        Assert.All(accepted, a => Assert.Equal(first, a.Text)); // replays are byte-for-byte the first answer
        var id = System.Text.Json.Nodes.JsonNode.Parse(first)!["id"]!.GetValue<string>();
        Assert.All(accepted, a => Assert.Equal($"/v1/generations/{id}", a.Headers.Location!.OriginalString));
        Assert.Equal(accepted.Count - 1, accepted.Count(a => a.Headers.TryGetValues("Idempotent-Replayed", out var v) && v.Single() == "true"));
        foreach (var conflict in inFlight)
        {
            var problem = System.Text.Json.Nodes.JsonNode.Parse(conflict.Text)!;
            Assert.Equal("urn:mai-image-gateway:problem:idempotency-key-in-flight", problem["type"]!.GetValue<string>());
            Assert.Equal(409, problem["status"]!.GetValue<int>());
            Assert.Equal("1", conflict.Headers.GetValues("Retry-After").Single());
        }

        using var later = await clients[1].SendAsync(Post("order-42", body), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Accepted, later.StatusCode);
        Assert.Equal(first, await later.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.Equal("true", later.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(1, harness.Fal.SubmitCount);

        var usage = await (await clients[2].GetAsync("/v1/usage", TestContext.Current.CancellationToken)).JsonAsync();
        Assert.Equal(1, usage["submits"]!.GetValue<long>());
        Assert.Equal(2, usage["images"]!.GetValue<long>());
    }

    [Fact]
    public async Task SameKey_WithADifferentBody_Is422_AndSubmitsNothing()
    {
        var client = new TestClient();
        await using var harness = await GatewayHarness.StartAsync(redis, settings: client.Settings);
        var http = harness.Client(client.Key);
        using var first = await http.SendAsync(Post("k-1", """{"prompt":"a cat"}"""), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);

        using var changed = await http.SendAsync(Post("k-1", """{"prompt":"a dog"}"""), TestContext.Current.CancellationToken);
        var problem = await changed.JsonAsync();
        Assert.Equal(HttpStatusCode.UnprocessableEntity, changed.StatusCode);
        Assert.Equal("application/problem+json", changed.Content.Headers.ContentType!.MediaType);
        Assert.Equal("urn:mai-image-gateway:problem:idempotency-key-reused", problem["type"]!.GetValue<string>());

        using var otherRoute = await http.SendAsync(Post("k-1", """{"prompt":"a cat"}""", "/v1/edits"), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, otherRoute.StatusCode);
        Assert.Equal(1, harness.Fal.SubmitCount);
    }

    [Fact]
    public async Task FirstAttemptRefusedByALimit_IsNotReplayed_TheRetryWithTheSameKeyIsSubmitted()
    {
        var time = FakeTime.At("2026-11-24T12:00:30Z");
        var client = new TestClient(("RequestsPerMinute", "1"));
        await using var harness = await GatewayHarness.StartAsync(redis, settings: client.Settings, services: FakeTime.Use(time));
        var http = harness.Client(client.Key);
        await http.SubmitAsync(new { prompt = "uses the minute" });

        using var refused = await http.SendAsync(Post("retry-me", """{"prompt":"later"}"""), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("30", refused.Headers.GetValues("Retry-After").Single());

        time.Advance(TimeSpan.FromSeconds(30));
        using var retried = await http.SendAsync(Post("retry-me", """{"prompt":"later"}"""), TestContext.Current.CancellationToken);
        var body = await retried.JsonAsync();
        Assert.Equal(HttpStatusCode.Accepted, retried.StatusCode);
        Assert.False(retried.Headers.Contains("Idempotent-Replayed"));
        Assert.Equal("IN_QUEUE", body["status"]!.GetValue<string>());
        Assert.Contains("\"minute\";r=0;t=60", retried.Headers.GetValues("RateLimit").Single(), StringComparison.Ordinal);
        Assert.Equal(2, harness.Fal.AcceptedSubmitCount);
    }

    [Fact]
    public async Task FirstAttemptInvalid_IsNotKept_TheCorrectedRetryIsJudgedAfresh()
    {
        var client = new TestClient();
        await using var harness = await GatewayHarness.StartAsync(redis, settings: client.Settings);
        var http = harness.Client(client.Key);

        using var invalid = await http.SendAsync(Post("fix-me", """{"prompt":"x","num_images":9}"""), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.Equal("num_images", (await invalid.JsonAsync()).Field());

        using var again = await http.SendAsync(Post("fix-me", """{"prompt":"x","num_images":9}"""), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.BadRequest, again.StatusCode);
        Assert.Equal(0, harness.Fal.SubmitCount);
    }

    [Fact]
    public async Task Keys_ArePerClient_TheSameKeyFromAnotherClientSubmitsItsOwnJob()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var key = "shared-" + Guid.NewGuid().ToString("N");
        using var alpha = await harness.Client(GatewayHarness.AlphaKey).SendAsync(Post(key, """{"prompt":"same"}"""), TestContext.Current.CancellationToken);
        using var beta = await harness.Client(GatewayHarness.BetaKey).SendAsync(Post(key, """{"prompt":"same"}"""), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.Accepted, alpha.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, beta.StatusCode);
        Assert.NotEqual((await alpha.JsonAsync())["id"]!.GetValue<string>(), (await beta.JsonAsync())["id"]!.GetValue<string>());
        Assert.False(beta.Headers.Contains("Idempotent-Replayed"));
        Assert.Equal(2, harness.Fal.AcceptedSubmitCount);
    }

    [Fact]
    public async Task InvalidKey_Is400NamingTheHeader()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        using var request = Post("x", """{"prompt":"p"}""");
        request.Headers.Remove("Idempotency-Key");
        request.Headers.TryAddWithoutValidation("Idempotency-Key", new string('k', 300));
        using var response = await harness.Client().SendAsync(request, TestContext.Current.CancellationToken);
        var problem = await response.JsonAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("urn:mai-image-gateway:problem:idempotency-key-invalid", problem["type"]!.GetValue<string>());
        Assert.Equal("Idempotency-Key", problem.Field());
        Assert.Equal(0, harness.Fal.SubmitCount);
    }

    [Fact]
    public async Task InMemoryMode_ReplaysTheFirstAnswer()
    {
        var client = new TestClient();
        await using var harness = await GatewayHarness.StartAsync(redis: null, settings: client.Settings);
        var http = harness.Client(client.Key);
        using var first = await http.SendAsync(Post("mem", """{"prompt":"once"}"""), TestContext.Current.CancellationToken);
        using var second = await http.SendAsync(Post("mem", """{"prompt":"once"}"""), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Accepted, second.StatusCode);
        Assert.Equal(await first.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), await second.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.Equal(1, harness.Fal.SubmitCount);
    }
}
