using System.Net;
using Gateway.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;

namespace Gateway.Tests;

public sealed class OwnershipAndCachingTests(RedisServer redis)
{
    [Fact]
    public async Task AnotherClientsGeneration_Is404OnEveryRoute_LikeAnUnknownId()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var alpha = harness.Client(GatewayHarness.AlphaKey);
        var beta = harness.Client(GatewayHarness.BetaKey, bearer: false);
        var id = await alpha.SubmitAsync(new { prompt = "alpha's" });

        foreach (var (method, path) in new[]
                 {
                     ("GET", $"/v1/generations/{id}"), ("GET", $"/v1/generations/{id}/status"),
                     ("GET", $"/v1/generations/{id}/result"), ("POST", $"/v1/generations/{id}/cancel"),
                 })
        {
            using var theirs = await beta.SendAsync(new HttpRequestMessage(new HttpMethod(method), path), TestContext.Current.CancellationToken);
            using var unknown = await beta.SendAsync(new HttpRequestMessage(new HttpMethod(method), path.Replace(id, Guid.NewGuid().ToString(), StringComparison.Ordinal)), TestContext.Current.CancellationToken);
            var body = await theirs.JsonAsync();
            Assert.Equal(HttpStatusCode.NotFound, theirs.StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
            Assert.Equal("urn:mai-image-gateway:problem:not-found", body["type"]!.GetValue<string>());
        }

        Assert.Equal(0, harness.Fal.CancelCount);
        using var own = await alpha.GetAsync($"/v1/generations/{id}", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, own.StatusCode);
    }

    [Fact]
    public async Task MissingOrUnknownKey_Returns401ProblemWithChallenge()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        foreach (var client in new[] { harness.Client(key: null), harness.Client("not-a-client-key") })
        {
            using var response = await client.PostJsonAsync("/v1/generations", new { prompt = "x" });
            var problem = await response.JsonAsync();
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
            Assert.Equal("urn:mai-image-gateway:problem:unauthorized", problem["type"]!.GetValue<string>());
        }

        Assert.Equal(0, harness.Fal.SubmitCount);
    }

    [Fact]
    public async Task ManyConcurrentPollers_CauseOneFalStatusCallPerWindow()
    {
        // The reconciler's own looks are kept out of the count: this is about client polls. The gateway's clock
        // moves only when the test moves it, so the window is exact however slow the machine is.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(10),
            settings: new Dictionary<string, string?> { ["Gateway:ReconcileMinDelay"] = "00:05:00", ["Gateway:ReconcileMaxDelay"] = "00:10:00" },
            services: FakeTime.Use(time));
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "popular [[run:10000]]" });
        await Task.Delay(300, TestContext.Current.CancellationToken);

        async Task Burst(int count)
        {
            var polls = Enumerable.Range(0, count).Select(async i =>
            {
                using var response = await client.GetAsync(i % 2 == 0 ? $"/v1/generations/{id}/status" : $"/v1/generations/{id}", TestContext.Current.CancellationToken);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            });
            await Task.WhenAll(polls);
        }

        await Burst(100);
        Assert.Equal(1, harness.Fal.StatusCallsFor(id));
        time.Advance(TimeSpan.FromMilliseconds(900));
        await Burst(50); // still inside the 1 s window
        Assert.Equal(1, harness.Fal.StatusCallsFor(id));
        time.Advance(TimeSpan.FromMilliseconds(200));
        await Burst(50);
        Assert.Equal(2, harness.Fal.StatusCallsFor(id));
    }

    [Fact]
    public async Task CompletedResult_IsFetchedFromFalOnce_ThenServedFromRedis_OnEveryReplica()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, replicas: 3);
        var id = await harness.Client(replica: 0).SubmitAsync(new { prompt = "shared", num_images = 2 });
        await Task.Delay(600, TestContext.Current.CancellationToken); // the job has ended at fal

        // Everyone asks at once, on all three replicas: one result call reaches fal.
        var reads = Enumerable.Range(0, 30).Select(async i =>
        {
            using var response = await harness.Client(replica: i % 3).GetAsync($"/v1/generations/{id}/result", TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        });
        var bodies = await Task.WhenAll(reads);
        Assert.Single(bodies.Distinct());
        Assert.Equal(1, harness.Fal.ResultCallsFor(id));

        var statusCalls = harness.Fal.StatusCallsFor(id);
        for (var i = 0; i < 5; i++)
        {
            using var again = await harness.Client(replica: i % 3).GetAsync($"/v1/generations/{id}", TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        }

        Assert.Equal(1, harness.Fal.ResultCallsFor(id));
        Assert.Equal(statusCalls, harness.Fal.StatusCallsFor(id)); // a terminal generation never asks fal again

        await using var connection = await ConnectionMultiplexer.ConnectAsync(harness.RedisConnectionString!);
        var ttl = await connection.GetDatabase().KeyTimeToLiveAsync($"gw:gen:{{{id}}}:result");
        Assert.True(ttl > TimeSpan.FromDays(6.9), $"the result is kept for the configured TTL (7 days), got {ttl}");
    }

    [Fact]
    public async Task LargeSyncResult_ComesBackIntact_AndIsNotKeptInRedisAsOneDocument()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.ImageLongSide = 1200,
            settings: new Dictionary<string, string?> { ["Fal:TotalTimeout"] = "00:01:00", ["Fal:AttemptTimeout"] = "00:00:30" });
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "noise [[noise]]", sync_mode = true, num_images = 4 });
        await client.WaitUntilDoneAsync(id, TimeSpan.FromSeconds(60));

        using var first = await client.GetAsync($"/v1/generations/{id}/result", TestContext.Current.CancellationToken);
        var firstBody = await first.Content.ReadAsByteArrayAsync(TestContext.Current.CancellationToken);
        using var second = await client.GetAsync($"/v1/generations/{id}", TestContext.Current.CancellationToken);
        var generation = await second.JsonAsync();

        Assert.True(firstBody.Length > 15_000_000, $"the test needs a large result, got {firstBody.Length} bytes");
        var result = System.Text.Json.Nodes.JsonNode.Parse(firstBody)!;
        Assert.Equal(result.ToJsonString(), generation["result"]!.ToJsonString());
        foreach (var image in result["images"]!.AsArray())
        {
            var url = image!["url"]!.GetValue<string>();
            Assert.StartsWith("data:image/png;base64,", url, StringComparison.Ordinal);
            var bytes = Convert.FromBase64String(url["data:image/png;base64,".Length..]);
            using var bitmap = SkiaSharp.SKBitmap.Decode(bytes);
            Assert.Equal(1200, Math.Max(bitmap.Width, bitmap.Height));
            Assert.Equal(image["file_size"]!.GetValue<long>(), bytes.Length);
        }

        await using var connection = await ConnectionMultiplexer.ConnectAsync(harness.RedisConnectionString!);
        var db = connection.GetDatabase();
        Assert.True(await db.StringLengthAsync($"gw:gen:{{{id}}}:result") < 10_000, "the stored document is a small skeleton");
        for (var i = 0; i < 4; i++)
        {
            Assert.True(await db.StringLengthAsync($"gw:gen:{{{id}}}:blob:{i}") > 1_000_000, $"image {i} is stored as binary");
        }

        Assert.Equal(1, harness.Fal.ResultCallsFor(id));
    }
}
