using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Gateway.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Tests;

/// <summary>
/// Issue 13: what pollers cost. An ended generation's status and result come from the replica's memory, not Redis;
/// an end on one replica is seen at once on the others; and status polls through the fal proxy are shared like /v1's,
/// one fal call per generation per StatusCacheTtl per replica, each poller getting fal's own answer.
/// </summary>
public sealed class HotPathCachingTests(RedisServer redis)
{
    private const string Requests = "https://queue.fal.run/microsoft/mai-image-2.5/requests/";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task CompletedGeneration_StatusAndResult_AreServedWithoutRedis()
    {
        var directory = Directory.CreateTempSubdirectory("gateway-read-cache-");
        try
        {
            await using var ownRedis = await RedisServer.StartDurableAsync(directory.FullName);
            await using var harness = await GatewayHarness.StartAsync(ownRedis);
            var client = harness.Client();
            var id = await client.SubmitAsync(new { prompt = "kept in memory", num_images = 2 });
            await client.WaitUntilDoneAsync(id);
            using var before = await client.GetAsync($"/v1/generations/{id}/result", Ct);
            var resultBefore = await before.Content.ReadAsStringAsync(Ct);
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);

            ownRedis.Kill();

            for (var i = 0; i < 3; i++)
            {
                using var status = await client.GetAsync($"/v1/generations/{id}/status", Ct);
                using var result = await client.GetAsync($"/v1/generations/{id}/result", Ct);
                using var generation = await client.GetAsync($"/v1/generations/{id}", Ct);
                Assert.Equal(HttpStatusCode.OK, status.StatusCode);
                Assert.Equal("COMPLETED", (await status.JsonAsync())["status"]!.GetValue<string>());
                Assert.Equal(HttpStatusCode.OK, result.StatusCode);
                Assert.Equal(resultBefore, await result.Content.ReadAsStringAsync(Ct));
                Assert.Equal(HttpStatusCode.OK, generation.StatusCode);
                Assert.Equal(JsonNode.Parse(resultBefore)!.ToJsonString(), (await generation.JsonAsync())["result"]!.ToJsonString());
            }

            // Redis really is gone: a generation this replica has not seen cannot be answered.
            using var unseen = await client.GetAsync($"/v1/generations/{Guid.NewGuid()}/status", Ct);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, unseen.StatusCode);
            Assert.Equal("urn:mai-image-gateway:problem:store-unavailable", (await unseen.JsonAsync())["type"]!.GetValue<string>());
            Assert.Equal(1, harness.Fal.ResultCallsFor(id));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task AnEndOnOneReplica_IsSeenAtOnceOnAnotherThatHeldTheRunningRecord()
    {
        // The gateway's clock stands still: StatusCacheTtl never lapses, so only the end signal can tell replica 1
        // that the running record it holds (and fal's IN_PROGRESS it cached) is stale.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromMilliseconds(1500), replicas: 2, webhooks: true,
            settings: new Dictionary<string, string?> { ["Gateway:ReconcileMinDelay"] = "00:05:00", ["Gateway:ReconcileMaxDelay"] = "00:10:00" },
            services: FakeTime.Use(time));
        var id = await harness.Client(replica: 0).SubmitAsync(new { prompt = "seen everywhere" });
        var other = harness.Client(replica: 1);
        await WaitForFalRunningAsync(harness, id);
        using (var running = await other.GetAsync($"/v1/generations/{id}/status", Ct))
        {
            Assert.Equal("IN_PROGRESS", (await running.JsonAsync())["status"]!.GetValue<string>());
        }

        var statusCalls = harness.Fal.StatusCallsFor(id);

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (harness.Fal.WebhooksSent == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "fal sent no webhook");
            await Task.Delay(50, Ct);
        }

        var status = await WaitForStatusAsync(other, id, "COMPLETED");
        using var result = await other.GetAsync($"/v1/generations/{id}/result", Ct);
        Assert.Equal("COMPLETED", status["status"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, result.StatusCode);
        Assert.Equal(statusCalls, harness.Fal.StatusCallsFor(id)); // replica 1 learnt of the end from the signal, not from fal
    }

    [Fact]
    public async Task ManyProxiedStatusPollers_CauseOneFalStatusCallPerWindow_AndEachGetsFalsAnswer()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(20),
            settings: new Dictionary<string, string?> { ["Gateway:ReconcileMinDelay"] = "00:05:00", ["Gateway:ReconcileMaxDelay"] = "00:10:00" },
            services: FakeTime.Use(time));
        var client = harness.Client();
        var id = await SubmitThroughProxyAsync(client);
        var target = $"{Requests}{id}/status";
        await WaitForFalRunningAsync(harness, id);

        async Task<List<(HttpStatusCode Status, string? ContentType, string? RequestId, string Body)>> Burst(int count) =>
            [.. await Task.WhenAll(Enumerable.Range(0, count).Select(async _ =>
            {
                using var response = await FalProxyTests.ProxyAsync(client, HttpMethod.Get, target);
                return (response.StatusCode, response.Content.Headers.ContentType?.ToString(),
                    response.Headers.TryGetValues("x-fal-request-id", out var ids) ? ids.Single() : null, await response.Content.ReadAsStringAsync(Ct));
            }))];

        var before = harness.Fal.StatusCallsFor(id);
        var first = await Burst(60);
        Assert.Equal(before + 1, harness.Fal.StatusCallsFor(id));
        time.Advance(TimeSpan.FromMilliseconds(900));
        var second = await Burst(30); // still inside the 1 s window
        Assert.Equal(before + 1, harness.Fal.StatusCallsFor(id));
        time.Advance(TimeSpan.FromMilliseconds(200));
        await Burst(30);
        Assert.Equal(before + 2, harness.Fal.StatusCallsFor(id));

        // Every poller got what fal itself answers to that call: status code, the headers the client reads, the body.
        var fal = await AskFalDirectlyAsync(harness, id);
        Assert.All(first.Concat(second), answer =>
        {
            Assert.Equal(fal.Status, answer.Status);
            Assert.Equal(fal.ContentType, answer.ContentType);
            Assert.Equal(id, answer.RequestId);
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(fal.Body), JsonNode.Parse(answer.Body)), $"fal: {fal.Body}\nproxy: {answer.Body}");
        });
        Assert.Equal(HttpStatusCode.Accepted, fal.Status);
        Assert.Equal("IN_PROGRESS", JsonNode.Parse(fal.Body)!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task ProxiedStatusOfAnotherClientsRequest_Is404_EvenWhileItsAnswerIsCached()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(20));
        var id = await SubmitThroughProxyAsync(harness.Client());
        using var own = await FalProxyTests.ProxyAsync(harness.Client(), HttpMethod.Get, $"{Requests}{id}/status");
        Assert.True(own.IsSuccessStatusCode, $"{(int)own.StatusCode}");
        var statusCalls = harness.Fal.StatusCallsFor(id);

        foreach (var target in new[] { $"{Requests}{id}/status", $"{Requests}{id}/status?logs=1" })
        {
            using var theirs = await FalProxyTests.ProxyAsync(harness.Client(GatewayHarness.BetaKey), HttpMethod.Get, target);
            var body = await theirs.JsonAsync();
            Assert.Equal(HttpStatusCode.NotFound, theirs.StatusCode);
            Assert.Equal($"Request {id} not found", body["detail"]!.GetValue<string>());
        }

        Assert.Equal(statusCalls, harness.Fal.StatusCallsFor(id));
    }

    private static async Task<string> SubmitThroughProxyAsync(HttpClient client)
    {
        using var response = await FalProxyTests.ProxyAsync(client, HttpMethod.Post, "https://queue.fal.run/microsoft/mai-image-2.5", """{"prompt":"a lighthouse"}""");
        var body = await response.JsonAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToJsonString());
        return body["request_id"]!.GetValue<string>();
    }

    /// <summary>Waits (on the stand-in's own view, without asking fal through the gateway) until the job runs.</summary>
    private static async Task WaitForFalRunningAsync(GatewayHarness harness, string id)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!(await AskFalDirectlyAsync(harness, id)).Body.Contains("IN_PROGRESS", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, "the job did not start at fal");
            await Task.Delay(50, Ct);
        }
    }

    private static async Task<(HttpStatusCode Status, string? ContentType, string Body)> AskFalDirectlyAsync(GatewayHarness harness, string id)
    {
        using var fal = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{harness.Emulator.QueueBaseUrl.TrimEnd('/')}/microsoft/mai-image-2.5/requests/{id}/status");
        request.Headers.Authorization = new AuthenticationHeaderValue("Key", harness.FalKey);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        using var response = await fal.SendAsync(request, Ct);
        return (response.StatusCode, response.Content.Headers.ContentType?.ToString(), await response.Content.ReadAsStringAsync(Ct));
    }

    private static async Task<JsonNode> WaitForStatusAsync(HttpClient client, string id, string wanted)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            using var response = await client.GetAsync($"/v1/generations/{id}/status", Ct);
            var json = await response.JsonAsync();
            if (json["status"]?.GetValue<string>() == wanted)
            {
                return json;
            }

            Assert.True(DateTime.UtcNow < deadline, $"generation {id} never showed {wanted}; last {json}");
            await Task.Delay(50, Ct);
        }
    }
}
