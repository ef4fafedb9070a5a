using System.Net;
using System.Text.RegularExpressions;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests;

public sealed partial class LimitTests(RedisServer redis)
{
    [Fact]
    public async Task ThreeReplicas_FortyConcurrentSubmits_AtTenPerMinute_AcceptExactlyTen_AndRefuseThirtyWithHeaders()
    {
        var time = FakeTime.At("2026-11-24T10:00:20Z");
        var client = new TestClient(("RequestsPerMinute", "10"));
        await using var harness = await GatewayHarness.StartAsync(redis, settings: client.Settings, replicas: 3, services: FakeTime.Use(time));
        var clients = Enumerable.Range(0, 3).Select(i => harness.Client(client.Key, replica: i)).ToArray();

        var responses = await Task.WhenAll(Enumerable.Range(0, 40).Select(async i =>
        {
            using var response = await clients[i % 3].PostJsonAsync("/v1/generations", new { prompt = $"burst {i}" });
            return (response.StatusCode, Headers: response.Headers, Body: await response.JsonAsync());
        }));

        var accepted = responses.Where(r => r.StatusCode == HttpStatusCode.Accepted).ToList();
        var refused = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        var others = string.Join("\n", responses.Where(r => r.StatusCode is not (HttpStatusCode.Accepted or HttpStatusCode.TooManyRequests))
            .Select(r => $"{(int)r.StatusCode} {r.Body.ToJsonString()}"));
        Assert.True(accepted.Count == 10 && refused.Count == 30, $"{accepted.Count} accepted, {refused.Count} refused; others:\n{others}");
        Assert.Equal(10, harness.Fal.AcceptedSubmitCount);
        Assert.Equal(10, harness.Fal.SubmitCount);
        foreach (var (_, headers, body) in accepted)
        {
            Assert.Equal("IN_QUEUE", body["status"]!.GetValue<string>());
            Assert.Equal("\"minute\";q=10;w=60, \"day\";q=100000000;w=86400, \"concurrent\";q=100000;qu=\"concurrent-requests\"",
                headers.GetValues("RateLimit-Policy").Single());
            Assert.Matches(MinuteRemaining(), headers.GetValues("RateLimit").Single());
        }

        Assert.Equal(
            Enumerable.Range(0, 10).Select(r => r.ToString(System.Globalization.CultureInfo.InvariantCulture)).Order(),
            accepted.Select(a => MinuteRemaining().Match(a.Headers.GetValues("RateLimit").Single()).Groups["r"].Value).Order());
        foreach (var (_, headers, body) in refused)
        {
            Assert.Equal("40", headers.GetValues("Retry-After").Single());
            Assert.StartsWith("\"minute\";r=0;t=40, \"day\";", headers.GetValues("RateLimit").Single(), StringComparison.Ordinal);
            Assert.Contains("\"minute\";q=10;w=60", headers.GetValues("RateLimit-Policy").Single(), StringComparison.Ordinal);
            Assert.Equal("urn:mai-image-gateway:problem:limit-exceeded", body["type"]!.GetValue<string>());
            Assert.Equal(429, body["status"]!.GetValue<int>());
            Assert.Equal(["requests_per_minute"], body["limits"]!.AsArray().Select(l => l!.GetValue<string>()));
            Assert.Equal(40, body["retry_after_seconds"]!.GetValue<int>());
            Assert.Contains("10 submits per minute", body["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task RequestsPerMinute_RollsOverWhenTheClockReachesTheNextMinute()
    {
        var time = FakeTime.At("2026-11-24T10:00:45Z");
        var client = new TestClient(("RequestsPerMinute", "2"));
        await using var harness = await GatewayHarness.StartAsync(redis, settings: client.Settings, services: FakeTime.Use(time));
        var http = harness.Client(client.Key);
        await http.SubmitAsync(new { prompt = "one" });
        await http.SubmitAsync(new { prompt = "two" });

        using var refused = await http.PostJsonAsync("/v1/generations", new { prompt = "three" });
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("15", refused.Headers.GetValues("Retry-After").Single());
        Assert.StartsWith("\"minute\";r=0;t=15,", refused.Headers.GetValues("RateLimit").Single(), StringComparison.Ordinal);

        time.Advance(TimeSpan.FromSeconds(14));
        using var stillRefused = await http.PostJsonAsync("/v1/generations", new { prompt = "three" });
        Assert.Equal(HttpStatusCode.TooManyRequests, stillRefused.StatusCode);
        Assert.Equal("1", stillRefused.Headers.GetValues("Retry-After").Single());

        time.Advance(TimeSpan.FromSeconds(1));
        using var accepted = await http.PostJsonAsync("/v1/generations", new { prompt = "three" });
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        Assert.StartsWith("\"minute\";r=1;t=60,", accepted.Headers.GetValues("RateLimit").Single(), StringComparison.Ordinal);
        Assert.Equal(3, harness.Fal.AcceptedSubmitCount);
    }

    [Fact]
    public async Task ImagesPerDay_CountsNumImages_AndRollsOverAtUtcMidnight()
    {
        var time = FakeTime.At("2026-11-24T23:59:00Z");
        var client = new TestClient(("ImagesPerDay", "5"));
        await using var harness = await GatewayHarness.StartAsync(redis, settings: client.Settings, services: FakeTime.Use(time));
        var http = harness.Client(client.Key);

        using (var four = await http.PostJsonAsync("/v1/generations", new { prompt = "four", num_images = 4 }))
        {
            Assert.Equal(HttpStatusCode.Accepted, four.StatusCode);
            Assert.Contains("\"day\";r=1;t=60", four.Headers.GetValues("RateLimit").Single(), StringComparison.Ordinal);
        }

        using (var two = await http.PostJsonAsync("/v1/generations", new { prompt = "two more", num_images = 2 }))
        {
            var problem = await two.JsonAsync();
            Assert.Equal(HttpStatusCode.TooManyRequests, two.StatusCode);
            Assert.Equal("60", two.Headers.GetValues("Retry-After").Single());
            Assert.Equal(["images_per_day"], problem["limits"]!.AsArray().Select(l => l!.GetValue<string>()));
            Assert.Contains("5 images per day (4 used)", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        await http.SubmitAsync(new { prompt = "the last one", num_images = 1 });
        var usage = await (await http.GetAsync("/v1/usage", TestContext.Current.CancellationToken)).JsonAsync();
        Assert.Equal("2026-11-24", usage["date"]!.GetValue<string>());
        Assert.Equal(5, usage["images"]!.GetValue<long>());
        Assert.Equal(2, usage["submits"]!.GetValue<long>());
        Assert.Equal(0, usage["limits"]!["images_per_day"]!["remaining"]!.GetValue<long>());

        time.Advance(TimeSpan.FromMinutes(1));
        await http.SubmitAsync(new { prompt = "a new day", num_images = 4 });
        usage = await (await http.GetAsync("/v1/usage", TestContext.Current.CancellationToken)).JsonAsync();
        Assert.Equal("2026-11-25", usage["date"]!.GetValue<string>());
        Assert.Equal(4, usage["images"]!.GetValue<long>());
        Assert.Equal(1, usage["limits"]!["images_per_day"]!["remaining"]!.GetValue<long>());
        Assert.Equal(86400, usage["limits"]!["images_per_day"]!["reset_seconds"]!.GetValue<int>());
        Assert.Equal(3, harness.Fal.AcceptedSubmitCount);
    }

    /// <summary>A proxied fal.run is a submit like any other: it counts, and the budget stops it (it once gave its units back).</summary>
    [Fact]
    public async Task ProxiedFalRun_CountsInUsage_AndIsRefusedOnceTheBudgetIsSpent()
    {
        var time = FakeTime.At("2026-11-24T12:00:00Z");
        var client = new TestClient(("DailyBudgetUsd", "0.25"));
        var settings = new Dictionary<string, string?>(client.Settings) { ["FalProxy:AllowRun"] = "true" };
        await using var harness = await GatewayHarness.StartAsync(redis, settings: settings, services: FakeTime.Use(time));
        var http = harness.Client(client.Key);

        using var run = await FalProxyTests.ProxyAsync(http, HttpMethod.Post, "https://fal.run/microsoft/mai-image-2.5", """{"prompt":"four","num_images":4}""");
        Assert.Equal(HttpStatusCode.OK, run.StatusCode);
        var usage = await (await http.GetAsync("/v1/usage", TestContext.Current.CancellationToken)).JsonAsync();
        Assert.Equal(4, usage["images"]!.GetValue<long>());
        Assert.Equal(1, usage["submits"]!.GetValue<long>());
        Assert.Equal(0.2m, usage["estimated_spend_usd"]!.GetValue<decimal>());
        Assert.Equal(0, usage["limits"]!["max_concurrent"]!["in_flight"]!.GetValue<long>());

        using var refused = await FalProxyTests.ProxyAsync(http, HttpMethod.Post, "https://fal.run/microsoft/mai-image-2.5", """{"prompt":"two","num_images":2}""");
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal(1, harness.Fal.RunCount);
    }

    [Fact]
    public async Task DailyBudget_RefusesASubmitThatWouldExceedIt_AndUsageShowsTheSpend()
    {
        var time = FakeTime.At("2026-11-24T12:00:00Z");
        var client = new TestClient(("DailyBudgetUsd", "0.25"));
        await using var harness = await GatewayHarness.StartAsync(redis, settings: client.Settings, services: FakeTime.Use(time));
        var http = harness.Client(client.Key);
        await http.SubmitAsync(new { prompt = "four", num_images = 4 });

        using var refused = await http.PostJsonAsync("/v1/edits", new { prompt = "two", num_images = 2, image_urls = new[] { GenerationFlowTests.TinyPngDataUri() } });
        var problem = await refused.JsonAsync();
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal(["daily_budget_usd"], problem["limits"]!.AsArray().Select(l => l!.GetValue<string>()));
        Assert.Equal("43200", refused.Headers.GetValues("Retry-After").Single());
        Assert.Contains("daily budget of $0.25 ($0.20 spent)", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);

        using var usageResponse = await http.GetAsync("/v1/usage", TestContext.Current.CancellationToken);
        var usage = await usageResponse.JsonAsync();
        Assert.Equal(HttpStatusCode.OK, usageResponse.StatusCode);
        Assert.Equal(client.Name, usage["client"]!.GetValue<string>());
        Assert.Equal(0.2m, usage["estimated_spend_usd"]!.GetValue<decimal>());
        Assert.Equal(0.05m, usage["price_per_image_usd"]!.GetValue<decimal>());
        Assert.Equal(0.25m, usage["limits"]!["daily_budget_usd"]!["limit"]!.GetValue<decimal>());
        Assert.Equal(0.05m, usage["limits"]!["daily_budget_usd"]!["remaining"]!.GetValue<decimal>());
        Assert.Equal(1, usage["limits"]!["requests_per_minute"]!["used"]!.GetValue<long>());
        Assert.Equal(1, harness.Fal.SubmitCount);
    }

    [Fact]
    public async Task MaxConcurrent_RefusesUntilTheUnfinishedGenerationEnds()
    {
        var client = new TestClient(("MaxConcurrent", "1"));
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromMilliseconds(600), settings: client.Settings);
        var http = harness.Client(client.Key);
        var first = await http.SubmitAsync(new { prompt = "first" });

        using (var refused = await http.PostJsonAsync("/v1/generations", new { prompt = "second" }))
        {
            var problem = await refused.JsonAsync();
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.Equal("1", refused.Headers.GetValues("Retry-After").Single());
            Assert.EndsWith("\"concurrent\";r=0", refused.Headers.GetValues("RateLimit").Single(), StringComparison.Ordinal);
            Assert.Equal(["max_concurrent"], problem["limits"]!.AsArray().Select(l => l!.GetValue<string>()));
        }

        var usage = await (await http.GetAsync("/v1/usage", TestContext.Current.CancellationToken)).JsonAsync();
        Assert.Equal(1, usage["limits"]!["max_concurrent"]!["in_flight"]!.GetValue<long>());

        await http.WaitUntilDoneAsync(first);
        await http.SubmitAsync(new { prompt = "second, after the first ended" });
        Assert.Equal(2, harness.Fal.AcceptedSubmitCount);
    }

    [Fact]
    public async Task SubmitThatFalRefuses_GivesItsUnitsBack()
    {
        var time = FakeTime.At("2026-11-24T12:00:00Z");
        var client = new TestClient(("RequestsPerMinute", "1"), ("ImagesPerDay", "2"));
        await using var harness = await GatewayHarness.StartAsync(redis, settings: client.Settings, services: FakeTime.Use(time));
        var http = harness.Client(client.Key);

        using (var failed = await http.PostJsonAsync("/v1/generations", new { prompt = "fal breaks [[fault:500]]", num_images = 2 }))
        {
            var problem = await failed.JsonAsync();
            Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
            Assert.Equal("urn:mai-image-gateway:problem:upstream-error", problem["type"]!.GetValue<string>());
        }

        var usage = await (await http.GetAsync("/v1/usage", TestContext.Current.CancellationToken)).JsonAsync();
        Assert.Equal(0, usage["submits"]!.GetValue<long>());
        Assert.Equal(0, usage["images"]!.GetValue<long>());
        Assert.Equal(0, usage["limits"]!["max_concurrent"]!["in_flight"]!.GetValue<long>());

        await http.SubmitAsync(new { prompt = "works", num_images = 2 });
        Assert.Equal(1, harness.Fal.AcceptedSubmitCount);
    }

    [Fact]
    public async Task RedisUnreachable_SubmitAndUsageAre503WithRetryAfter_AndNothingReachesFal()
    {
        var client = new TestClient();
        var settings = client.With(("ConnectionStrings:Redis", $"127.0.0.1:{RedisServer.FreePort()},connectTimeout=300,asyncTimeout=500,syncTimeout=500"));
        await using var harness = await GatewayHarness.StartAsync(redis, settings: settings);
        var http = harness.Client(client.Key);

        using var submit = await http.PostJsonAsync("/v1/generations", new { prompt = "no redis" });
        var problem = await submit.JsonAsync();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, submit.StatusCode);
        Assert.Equal("application/problem+json", submit.Content.Headers.ContentType!.MediaType);
        Assert.Equal("urn:mai-image-gateway:problem:limits-unavailable", problem["type"]!.GetValue<string>());
        Assert.Contains("nothing was sent to fal", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("2", submit.Headers.GetValues("Retry-After").Single());
        Assert.Equal(0, harness.Fal.SubmitCount);

        using var usage = await http.GetAsync("/v1/usage", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, usage.StatusCode);
        Assert.Equal("urn:mai-image-gateway:problem:limits-unavailable", (await usage.JsonAsync())["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task InMemoryMode_LimitsStillApply()
    {
        var client = new TestClient(("RequestsPerMinute", "1"));
        await using var harness = await GatewayHarness.StartAsync(redis: null, settings: client.Settings,
            services: FakeTime.Use(FakeTime.At("2026-11-24T12:00:00Z")));
        var http = harness.Client(client.Key);
        await http.SubmitAsync(new { prompt = "one" });

        using var refused = await http.PostJsonAsync("/v1/generations", new { prompt = "two" });
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("60", refused.Headers.GetValues("Retry-After").Single());
        Assert.Equal(1, harness.Fal.SubmitCount);
    }

    [Fact]
    public async Task ProxiedSubmits_CountAgainstTheSameLimits_AndAreRefusedInFalsShape()
    {
        var client = new TestClient(("RequestsPerMinute", "1"));
        await using var harness = await GatewayHarness.StartAsync(redis, settings: client.Settings,
            services: FakeTime.Use(FakeTime.At("2026-11-24T12:00:20Z")));
        var http = harness.Client(client.Key);
        await http.SubmitAsync(new { prompt = "one via /v1" });

        using var refused = await FalProxyTests.ProxyAsync(http, HttpMethod.Post, "https://queue.fal.run/microsoft/mai-image-2.5", """{"prompt":"two via the proxy"}""");
        var body = await refused.JsonAsync();
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("application/json", refused.Content.Headers.ContentType!.MediaType); // fal's shape, for @fal-ai/client
        Assert.NotNull(body["detail"]);
        Assert.Equal("40", refused.Headers.GetValues("Retry-After").Single());
        Assert.NotNull(refused.Headers.GetValues("RateLimit").Single());
        Assert.Equal(1, harness.Fal.SubmitCount);
    }

    [GeneratedRegex("^\"minute\";r=(?<r>\\d+);t=40, \"day\";r=\\d+;t=\\d+, \"concurrent\";r=\\d+$")]
    private static partial Regex MinuteRemaining();
}
