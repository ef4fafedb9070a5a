using System.Net;
using FalEmulator;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests;

/// <summary>Each row of the contract's upstream table, against the stand-in's injected faults.</summary>
public sealed class UpstreamErrorTests(RedisServer redis)
{
    private static readonly Dictionary<string, string?> FastRetries = new()
    {
        ["Fal:RetryDelay"] = "00:00:00.020",
        ["Fal:AttemptTimeout"] = "00:00:01",
        ["Fal:TotalTimeout"] = "00:00:05",
    };

    public static TheoryData<string, HttpStatusCode, string> SubmitFaults => new()
    {
        { "content_policy", HttpStatusCode.UnprocessableEntity, "upstream-rejected" },
        { "422", HttpStatusCode.UnprocessableEntity, "upstream-rejected" },
        { "429", HttpStatusCode.TooManyRequests, "rate-limited" },
        { "401", HttpStatusCode.BadGateway, "upstream-configuration" },
        { "402", HttpStatusCode.ServiceUnavailable, "upstream-account" },
        { "500", HttpStatusCode.BadGateway, "upstream-error" },
        { "502", HttpStatusCode.BadGateway, "upstream-error" },
        { "503", HttpStatusCode.BadGateway, "upstream-error" },
        { "504", HttpStatusCode.GatewayTimeout, "upstream-timeout" },
        { "slow", HttpStatusCode.GatewayTimeout, "upstream-timeout" },
        { "drop", HttpStatusCode.BadGateway, "upstream-error" },
    };

    [Theory]
    [MemberData(nameof(SubmitFaults))]
    public async Task Submit_WhenFalFails_MapsToTheContractsStatus_AndIsNeverRetried(string fault, HttpStatusCode expected, string problemType)
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: FastRetries);
        using var response = await harness.Client().PostJsonAsync("/v1/generations", new { prompt = $"a cat [[fault:{fault}]]" });
        var problem = await response.JsonAsync();

        Assert.Equal(expected, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal(ProblemType(problemType), problem["type"]!.GetValue<string>());
        Assert.Equal(1, harness.Fal.SubmitCount); // a submit is never sent twice
        if (expected == HttpStatusCode.TooManyRequests)
        {
            Assert.True(response.Headers.RetryAfter?.Delta > TimeSpan.Zero, "429 carries Retry-After");
        }

        if (expected == HttpStatusCode.ServiceUnavailable)
        {
            Assert.NotNull(response.Headers.RetryAfter);
        }

        if (fault is "content_policy" or "422")
        {
            Assert.NotNull(problem["errors"]);
            Assert.Equal(422, problem["fal_status"]!.GetValue<int>());
        }

        if (fault == "401")
        {
            Assert.Contains("configured FAL key", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Contains("check Fal__Key", harness.Logs(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task StatusRead_TransientFailures_AreRetried_ThenSucceed()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(3), settings: FastRetries);
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "retry me" });
        harness.Fal.AddFault(new FaultRule { Operation = FalOperation.Status, Kind = "503", Count = 2, RequestId = id });

        using var response = await client.GetAsync($"/v1/generations/{id}/status", TestContext.Current.CancellationToken);
        var status = await response.JsonAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains(status["status"]!.GetValue<string>(), new[] { "IN_QUEUE", "IN_PROGRESS" });
        Assert.Equal(3, harness.Fal.StatusCallsFor(id));
    }

    [Fact]
    public async Task StatusRead_PersistentFailure_Returns502AfterBoundedRetries()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(3), settings: FastRetries);
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "broken status" });
        harness.Fal.AddFault(new FaultRule { Operation = FalOperation.Status, Kind = "500", RequestId = id });

        using var response = await client.GetAsync($"/v1/generations/{id}/status", TestContext.Current.CancellationToken);
        var problem = await response.JsonAsync();
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(ProblemType("upstream-error"), problem["type"]!.GetValue<string>());
        Assert.Equal(4, harness.Fal.StatusCallsFor(id)); // the call and Fal:MaxReadRetries (3) retries
    }

    [Fact]
    public async Task RepeatedFailures_OpenTheCircuit_Then503WithRetryAfter_WithoutCallingFal()
    {
        var settings = new Dictionary<string, string?>(FastRetries)
        {
            ["Fal:CircuitBreakerMinimumThroughput"] = "4",
            ["Fal:MaxReadRetries"] = "1",
        };
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(5), settings: settings);
        var client = harness.Client();
        // Failing before the first status call: a failure is never cached, and no success exists to be, so every
        // poll reaches fal without waiting out the status cache window.
        harness.Fal.AddFault(new FaultRule { Operation = FalOperation.Status, Kind = "500" });
        var id = await client.SubmitAsync(new { prompt = "circuit" });

        HttpResponseMessage? last = null;
        for (var i = 0; i < 6 && last?.StatusCode != HttpStatusCode.ServiceUnavailable; i++)
        {
            last?.Dispose();
            last = await client.GetAsync($"/v1/generations/{id}/status", TestContext.Current.CancellationToken);
        }

        using var open = last!;
        var problem = await open.JsonAsync();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, open.StatusCode);
        Assert.Equal(ProblemType("upstream-unavailable"), problem["type"]!.GetValue<string>());
        Assert.NotNull(open.Headers.RetryAfter);

        var calls = harness.Fal.StatusCallCount;
        var submits = harness.Fal.SubmitCount;
        using var submit = await client.PostJsonAsync("/v1/generations", new { prompt = "while open" });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, submit.StatusCode);
        Assert.Equal(submits, harness.Fal.SubmitCount);
        Assert.Equal(calls, harness.Fal.StatusCallCount);
    }

    [Fact]
    public async Task RedisUnreachable_Returns503WithRetryAfter_AndSubmitsNothing()
    {
        var dead = new Dictionary<string, string?> { ["ConnectionStrings:Redis"] = $"127.0.0.1:{RedisServer.FreePort()},connectTimeout=200" };
        await using var harness = await GatewayHarness.StartAsync(redis: null, settings: dead);
        using var response = await harness.Client().PostJsonAsync("/v1/generations", new { prompt = "no store" });
        var problem = await response.JsonAsync();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(ProblemType("limits-unavailable"), problem["type"]!.GetValue<string>()); // the first Redis use on a submit
        Assert.NotNull(response.Headers.RetryAfter);
        Assert.Equal(0, harness.Fal.SubmitCount);

        using var read = await harness.Client().GetAsync("/v1/generations/anything", TestContext.Current.CancellationToken);
        var readProblem = await read.JsonAsync();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, read.StatusCode);
        Assert.Equal(ProblemType("store-unavailable"), readProblem["type"]!.GetValue<string>());
        Assert.NotNull(read.Headers.RetryAfter);
    }

    [Fact]
    public async Task ResultFailure_AfterCompletedWithError_MakesTheGenerationFailed()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: FastRetries);
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "bad [[fault:422@result]]" });
        var done = await client.WaitUntilDoneAsync(id);
        Assert.Equal("FAILED", done["status"]!.GetValue<string>());
        using var generation = await client.GetAsync($"/v1/generations/{id}", TestContext.Current.CancellationToken);
        var body = await generation.JsonAsync();
        Assert.Equal(422, body["error"]!["status"]!.GetValue<int>());
        Assert.NotNull(body["error"]!["errors"]);
    }

    private static string ProblemType(string slug) => "urn:mai-image-gateway:problem:" + slug;
}
