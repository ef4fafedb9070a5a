using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using FalEmulator;
using Gateway.Generations;
using Gateway.Tests.Infrastructure;
using StackExchange.Redis;

namespace Gateway.Tests;

public sealed class LiveCompletionTests(RedisServer redis)
{
    /// <summary>Nothing but the end signal can finish a wait quickly: polling and the reconciler are slowed right down.</summary>
    private static readonly Dictionary<string, string?> SignalOnly = new()
    {
        ["Gateway:EventStreamPollInterval"] = "00:00:30",
        ["Gateway:ReconcileMinDelay"] = "00:01:00",
        ["Gateway:ReconcileMaxDelay"] = "00:02:00",
        ["Gateway:WebhookGracePeriod"] = "00:01:00",
        ["Gateway:StatusCacheTtl"] = "00:01:00",
    };

    [Fact]
    public async Task WebhookToOneReplica_WakesPreferWaitAndEventStreamsOnTheOtherTwo()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(2), settings: SignalOnly, replicas: 3, webhooks: true);
        var id = await harness.Client(replica: 0).SubmitAsync(new { prompt = "fan out" });
        var clock = Stopwatch.StartNew();

        var wait = Task.Run(async () =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/generations/{id}");
            request.Headers.Add("Prefer", "wait=20");
            using var response = await harness.Client(replica: 1).SendAsync(request, TestContext.Current.CancellationToken);
            Assert.Equal("wait=20", response.Headers.GetValues("Preference-Applied").Single());
            return (await response.JsonAsync(), clock.Elapsed);
        }, TestContext.Current.CancellationToken);

        var stream = Task.Run(async () =>
        {
            using var response = await harness.Client(replica: 2).GetAsync($"/v1/generations/{id}/events", HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
            var events = await new ServerSentEventReader(await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken)).ReadAllAsync(TestContext.Current.CancellationToken);
            return (events, clock.Elapsed);
        }, TestContext.Current.CancellationToken);

        var (generation, waited) = await wait;
        var (events, streamed) = await stream;
        Assert.Equal("COMPLETED", generation["status"]!.GetValue<string>());
        Assert.NotNull(generation["result"]);
        Assert.Equal("completed", events[^1].Event);
        Assert.True(waited < TimeSpan.FromSeconds(10) && streamed < TimeSpan.FromSeconds(10),
            $"woken by the webhook on replica 0, not by polling (wait {waited}, stream {streamed})");
        // The stand-in records the delivery once it has read the gateway's answer, which can come after the wake-ups.
        for (var i = 0; i < 50 && !harness.Fal.WebhookAttempts.Any(a => a.RequestId == id); i++)
        {
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        Assert.Single(harness.Fal.WebhookAttempts, a => a.RequestId == id && a.StatusCode == 200);
        Assert.Equal(0, harness.Fal.ResultCallsFor(id)); // the webhook carried the result
    }

    [Fact]
    public async Task DroppedWebhook_StillCompletesThroughTheReconciler_WithoutAnyClientPolling()
    {
        var settings = new Dictionary<string, string?>
        {
            ["Gateway:WebhookGracePeriod"] = "00:00:01",
            ["Gateway:ReconcileMinDelay"] = "00:00:00.300",
            ["Gateway:ReconcileInterval"] = "00:00:00.100",
        };
        await using var harness = await GatewayHarness.StartAsync(redis, settings: settings, replicas: 3, webhooks: true);
        var id = await harness.Client().SubmitAsync(new { prompt = "lost [[fault:drop@webhook]]" });

        var record = await WaitForStoredStatusAsync(harness, id, "COMPLETED", TimeSpan.FromSeconds(20));
        Assert.Equal("COMPLETED", record["status"]!.GetValue<string>());
        Assert.DoesNotContain(harness.Fal.WebhookAttempts, a => a.RequestId == id && a.StatusCode == 200);
        Assert.Equal(1, harness.Fal.ResultCallsFor(id));
    }

    [Fact]
    public async Task WithoutWebhooks_TheReconcilerFinishesEveryGeneration_WithOnePollerPerGenerationAcrossThreeReplicas()
    {
        var settings = new Dictionary<string, string?>
        {
            ["Gateway:ReconcileMinDelay"] = "00:00:00.500",
            ["Gateway:ReconcileInterval"] = "00:00:00.050",
            ["Gateway:StatusCacheTtl"] = "00:00:00.050",
        };
        await using var harness = await GatewayHarness.StartAsync(redis, e => { e.RunTime = TimeSpan.FromSeconds(3); e.MaxConcurrent = 10; }, settings: settings, replicas: 3);
        var ids = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            ids.Add(await harness.Client(replica: i % 3).SubmitAsync(new { prompt = $"job {i}" }));
        }

        foreach (var id in ids)
        {
            await WaitForStoredStatusAsync(harness, id, "COMPLETED", TimeSpan.FromSeconds(30));
        }

        foreach (var id in ids)
        {
            var looks = harness.Fal.Requests.Where(r => r.PathAndQuery.EndsWith($"/requests/{id}/status", StringComparison.Ordinal)).Select(r => r.At).Order().ToList();
            Assert.True(looks.Count >= 2, $"{id}: the reconciler looked {looks.Count} times");
            var gaps = looks.Zip(looks.Skip(1), (a, b) => b - a).ToList();
            Assert.True(gaps.All(g => g >= TimeSpan.FromMilliseconds(350)),
                $"{id}: two looks {gaps.Min().TotalMilliseconds:F0} ms apart: more than one replica polled it ({string.Join(", ", gaps.Select(g => (int)g.TotalMilliseconds))})");
            Assert.Equal(1, harness.Fal.ResultCallsFor(id));
        }
    }

    [Fact]
    public async Task EventStream_FramesStatusChangesWithQueuePosition_ThenOneTerminalEvent_ThenEnds()
    {
        var settings = new Dictionary<string, string?> { ["Gateway:EventStreamPollInterval"] = "00:00:00.100", ["Gateway:StatusCacheTtl"] = "00:00:00.050" };
        await using var harness = await GatewayHarness.StartAsync(redis, e => { e.MaxConcurrent = 1; e.RunTime = TimeSpan.FromMilliseconds(700); }, settings: settings);
        var client = harness.Client();
        await client.SubmitAsync(new { prompt = "ahead 1" });
        await client.SubmitAsync(new { prompt = "ahead 2" });
        var id = await client.SubmitAsync(new { prompt = "watched" });

        using var response = await client.GetAsync($"/v1/generations/{id}/events", HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var reader = new ServerSentEventReader(await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken));
        var events = await reader.ReadAllAsync(TestContext.Current.CancellationToken);

        Assert.NotEmpty(reader.RetryHints);
        var statuses = events.Where(e => e.Event == "status").Select(e => JsonNode.Parse(e.Data)!).ToList();
        Assert.Contains(statuses, s => s["status"]!.GetValue<string>() == "IN_QUEUE" && s["queue_position"]!.GetValue<int>() >= 1);
        Assert.Contains(statuses, s => s["status"]!.GetValue<string>() == "IN_PROGRESS");
        Assert.Equal(events.Where(e => e.Event == "status").Select(e => e.Id).Distinct().Count(), statuses.Count); // no repeats
        Assert.Single(events, e => e.Event is "completed" or "failed");
        var last = events[^1];
        Assert.Equal("completed", last.Event);
        Assert.Equal("completed", last.Id);
        var generation = JsonNode.Parse(last.Data)!;
        Assert.Equal(id, generation["id"]!.GetValue<string>());
        Assert.NotNull(generation["result"]!["images"]);
    }

    [Fact]
    public async Task EventStreams_OnOneGeneration_ShareOneLookPerInterval_AndEachGetsEveryEvent()
    {
        // Looks every 300 ms, fal's answer kept 50 ms: each look is a fal status call, so the calls count the looks.
        var settings = new Dictionary<string, string?>(SignalOnly)
        {
            ["Gateway:EventStreamPollInterval"] = "00:00:00.300",
            ["Gateway:StatusCacheTtl"] = "00:00:00.050",
        };
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(3), settings: settings);
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "watched by many" });
        var clock = Stopwatch.StartNew();
        var before = harness.Fal.StatusCallsFor(id);

        // Opened 40 ms apart, so that streams looking for themselves would look in 20 different windows.
        var streams = new List<Task<List<ServerSentEvent>>>();
        for (var i = 0; i < 20; i++)
        {
            streams.Add(Task.Run(async () =>
            {
                using var response = await client.GetAsync($"/v1/generations/{id}/events", HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                return await new ServerSentEventReader(await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken))
                    .ReadAllAsync(TestContext.Current.CancellationToken);
            }, TestContext.Current.CancellationToken));
            await Task.Delay(40, TestContext.Current.CancellationToken);
        }

        var all = await Task.WhenAll(streams);
        var looks = harness.Fal.StatusCallsFor(id) - before;
        var intervals = clock.Elapsed / TimeSpan.FromMilliseconds(300);
        foreach (var events in all)
        {
            Assert.Contains(events, e => e.Event == "status");
            Assert.Single(events, e => e.Event is "completed" or "failed");
            Assert.Equal("completed", events[^1].Event);
        }

        // One look per interval (and one when the end is signalled), not one per stream: 20 streams alone would make ~20 a interval.
        Assert.True(looks <= intervals + 3, $"{looks} fal status calls in {intervals:0.0} poll intervals with 20 streams open");
        Assert.Equal(0, harness.Services.GetRequiredService<GenerationTicker>().Watched);
    }

    [Fact]
    public async Task EventStream_LateJoiner_GetsTheTerminalEventAtOnce_AndOneWhoSawItGets204()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "[[fault:content_policy@result]] late" });
        await client.WaitUntilDoneAsync(id);

        using var response = await client.GetAsync($"/v1/generations/{id}/events", HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        var events = await new ServerSentEventReader(await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken)).ReadAllAsync(TestContext.Current.CancellationToken);
        var only = Assert.Single(events);
        Assert.Equal("failed", only.Event);
        Assert.Equal("FAILED", JsonNode.Parse(only.Data)!["status"]!.GetValue<string>());

        using var again = new HttpRequestMessage(HttpMethod.Get, $"/v1/generations/{id}/events");
        again.Headers.Add("Last-Event-ID", "failed");
        using var seen = await client.SendAsync(again, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.NoContent, seen.StatusCode);
    }

    [Fact]
    public async Task EventStream_ResumingWithLastEventId_DoesNotRepeatTheSeenStatus_AndSendsKeepAlives()
    {
        var settings = new Dictionary<string, string?> { ["Gateway:EventStreamKeepAlive"] = "00:00:00.200", ["Gateway:EventStreamPollInterval"] = "00:00:00.100" };
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(2), settings: settings);
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "resume" });
        await Task.Delay(400, TestContext.Current.CancellationToken); // running now

        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/generations/{id}/events");
        request.Headers.Add("Last-Event-ID", "p");
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        var reader = new ServerSentEventReader(await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken));
        var events = await reader.ReadAllAsync(TestContext.Current.CancellationToken);

        Assert.DoesNotContain(events, e => e.Id == "p");
        Assert.Equal("completed", events[^1].Event);
        Assert.Contains("keep-alive", reader.Comments);
    }

    [Fact]
    public async Task EventStream_OfAnotherClientsGeneration_Is404()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var id = await harness.Client(GatewayHarness.AlphaKey).SubmitAsync(new { prompt = "mine" });
        using var response = await harness.Client(GatewayHarness.BetaKey).GetAsync($"/v1/generations/{id}/events", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
    }

    [Fact]
    public async Task PreferWait_OnSubmit_Returns200WithTheFinishedGeneration_WhenItEndsInTime()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/generations") { Content = JsonContent.Create(new { prompt = "quick" }) };
        request.Headers.Add("Prefer", "wait=10");
        using var response = await harness.Client().SendAsync(request, TestContext.Current.CancellationToken);
        var generation = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("wait=10", response.Headers.GetValues("Preference-Applied").Single());
        Assert.Equal("COMPLETED", generation["status"]!.GetValue<string>());
        Assert.NotNull(generation["result"]!["images"]);
        Assert.Equal($"/v1/generations/{generation["id"]}", response.Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task PreferWait_WhenTheJobOutlastsIt_Returns202_AndTheWaitIsCapped()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(10),
            settings: new Dictionary<string, string?> { ["Gateway:MaxWaitSeconds"] = "1" });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/generations") { Content = JsonContent.Create(new { prompt = "slow" }) };
        request.Headers.Add("Prefer", "respond-async, wait=100");
        var clock = Stopwatch.StartNew();
        using var response = await harness.Client().SendAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("wait=1", response.Headers.GetValues("Preference-Applied").Single());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"capped at 1 s, took {clock.Elapsed}");
    }

    private static async Task<JsonNode> WaitForStoredStatusAsync(GatewayHarness harness, string id, string status, TimeSpan timeout)
    {
        await using var connection = await ConnectionMultiplexer.ConnectAsync(harness.RedisConnectionString!);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var value = await connection.GetDatabase().StringGetAsync($"gw:gen:{{{id}}}");
            var record = JsonNode.Parse((string)value!)!;
            if (record["status"]!.GetValue<string>() == status)
            {
                return record;
            }

            Assert.True(DateTime.UtcNow < deadline, $"{id} did not reach {status} in the store: {record}");
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
    }
}
