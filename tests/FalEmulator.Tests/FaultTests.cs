using System.Diagnostics;
using System.Net;

namespace FalEmulator.Tests;

public sealed class FaultTests
{
    public static TheoryData<string, int, string?> CallFaults => new()
    {
        { "401", 401, null },
        { "402", 402, "exhausted_balance" },
        { "429", 429, "rate_limited" },
        { "500", 500, "internal_error" },
        { "502", 502, "runner_connection_error" },
        { "503", 503, "runner_scheduling_failure" },
        { "504", 504, "request_timeout" },
    };

    [Theory]
    [MemberData(nameof(CallFaults))]
    public async Task Submit_WithPromptFault_AnswersThatStatusWithDetail(string kind, int status, string? errorType)
    {
        await using var emulator = await Emulator.Start();

        var (response, body) = await emulator.Submit(new { prompt = $"a cat [[fault:{kind}]]" });

        AssertInfrastructureError(response, body, status, errorType);
        Assert.Equal(1, emulator.State.SubmitCount);
        Assert.Equal(0, emulator.State.AcceptedSubmitCount);
    }

    [Theory]
    [MemberData(nameof(CallFaults))]
    public async Task Submit_WithFaultRule_AnswersThatStatusOnce(string kind, int status, string? errorType)
    {
        await using var emulator = await Emulator.Start(o => o.Faults = [new FaultRule { Operation = FalOperation.Submit, Kind = kind, Count = 1 }]);

        var (faulted, body) = await emulator.Submit(new { prompt = "a cat" });
        var (next, _) = await emulator.Submit(new { prompt = "a cat" });

        AssertInfrastructureError(faulted, body, status, errorType);
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Equal(2, emulator.State.SubmitCount);
        Assert.Equal(1, emulator.State.AcceptedSubmitCount);
    }

    [Fact]
    public async Task Submit_With422Fault_AnswersAValidationDetailList()
    {
        await using var emulator = await Emulator.Start();

        var (response, body) = await emulator.Submit(new { prompt = "[[fault:422]] x" });

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var issue = Emulator.OnlyIssue(body);
        Assert.Equal("body.prompt", Emulator.Loc(issue));
        Assert.False(string.IsNullOrEmpty(issue.GetProperty("msg").GetString()));
    }

    [Fact]
    public async Task Submit_WithContentPolicyFault_Answers422ContentPolicyViolation()
    {
        await using var emulator = await Emulator.Start();

        var (response, body) = await emulator.Submit(new { prompt = "forbidden [[fault:content_policy]]" });

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var issue = Emulator.OnlyIssue(body);
        Assert.Equal("content_policy_violation", issue.GetProperty("type").GetString());
        Assert.Equal("body.prompt", Emulator.Loc(issue));
    }

    [Fact]
    public async Task ContentPolicyAtResult_JobRunsThenFails_ResultAnswers422()
    {
        await using var emulator = await Emulator.Start();
        var submitted = await emulator.Accepted(new { prompt = "looks fine [[fault:content_policy@result]]" });

        var status = await emulator.WaitCompleted(submitted);
        var (result, body) = await emulator.Result(submitted);

        Assert.Equal("content_policy_violation", status.GetProperty("error_type").GetString());
        Assert.False(string.IsNullOrEmpty(status.GetProperty("error").GetString()));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, result.StatusCode);
        Assert.Equal("content_policy_violation", Emulator.OnlyIssue(body).GetProperty("type").GetString());
    }

    [Fact]
    public async Task StatusFault_FromPrompt_FailsStatusCallsOfThatJobOnly()
    {
        await using var emulator = await Emulator.Start();
        var faulty = await emulator.Accepted(new { prompt = "[[fault:503@status]]" });
        var healthy = await emulator.Accepted(new { prompt = "fine" });

        var (faultyResponse, faultyBody) = await emulator.Get(faulty.GetProperty("status_url").GetString()!);
        var (healthyResponse, _) = await emulator.Get(healthy.GetProperty("status_url").GetString()!);

        AssertInfrastructureError(faultyResponse, faultyBody, 503, "runner_scheduling_failure");
        Assert.Equal(faulty.GetProperty("request_id").GetString(), faultyResponse.Headers.GetValues("x-fal-request-id").Single());
        Assert.True(healthyResponse.IsSuccessStatusCode);
    }

    [Fact]
    public async Task PromptFault_WithCount_FiresThatManyTimes()
    {
        await using var emulator = await Emulator.Start();
        var submitted = await emulator.Accepted(new { prompt = "[[fault:500@result*2]]" });
        await emulator.WaitCompleted(submitted);

        var first = (await emulator.Result(submitted)).Response.StatusCode;
        var second = (await emulator.Result(submitted)).Response.StatusCode;
        var third = (await emulator.Result(submitted)).Response.StatusCode;

        Assert.Equal([HttpStatusCode.InternalServerError, HttpStatusCode.InternalServerError, HttpStatusCode.OK], [first, second, third]);
        Assert.Equal(3, emulator.State.ResultCallsFor(submitted.GetProperty("request_id").GetString()!));
    }

    [Fact]
    public async Task CancelFault_FromPrompt_AnswersThatStatus()
    {
        await using var emulator = await Emulator.Start();
        var submitted = await emulator.Accepted(new { prompt = "[[fault:502@cancel]]" });

        using var cancel = await emulator.Client.PutAsync(submitted.GetProperty("cancel_url").GetString(), null, Emulator.Ct);

        AssertInfrastructureError(cancel, await Emulator.ReadJson(cancel), 502, "runner_connection_error");
    }

    [Fact]
    public async Task FaultRule_ForOneRequestId_LeavesOthersAlone()
    {
        await using var emulator = await Emulator.Start();
        var target = await emulator.Accepted(new { prompt = "target" });
        var other = await emulator.Accepted(new { prompt = "other" });
        emulator.State.AddFault(new FaultRule { Operation = FalOperation.Status, Kind = "500", RequestId = target.GetProperty("request_id").GetString() });

        var (otherResponse, _) = await emulator.Get(other.GetProperty("status_url").GetString()!);
        var (targetResponse, _) = await emulator.Get(target.GetProperty("status_url").GetString()!);

        Assert.True(otherResponse.IsSuccessStatusCode);
        Assert.Equal(HttpStatusCode.InternalServerError, targetResponse.StatusCode);
    }

    [Fact]
    public async Task ClearFaults_StopsFaultRules()
    {
        await using var emulator = await Emulator.Start();
        emulator.State.AddFault(new FaultRule { Operation = FalOperation.Submit, Kind = "503" });
        var (faulted, _) = await emulator.Submit(new { prompt = "x" });

        emulator.State.ClearFaults();
        var (next, _) = await emulator.Submit(new { prompt = "x" });

        Assert.Equal(HttpStatusCode.ServiceUnavailable, faulted.StatusCode);
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Fact]
    public async Task SlowFault_StallsTheAnswer_ThenAnswersNormally()
    {
        await using var emulator = await Emulator.Start(o => o.SlowDelay = TimeSpan.FromMilliseconds(500));
        var watch = Stopwatch.StartNew();

        var (response, _) = await emulator.Submit(new { prompt = "[[fault:slow]]" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(450), $"answered after {watch.Elapsed}");
    }

    [Fact]
    public async Task SlowFaultRule_OnStatus_StallsTheStatusCall()
    {
        await using var emulator = await Emulator.Start(o => o.SlowDelay = TimeSpan.FromMilliseconds(500));
        var submitted = await emulator.Accepted(new { prompt = "x" });
        emulator.State.AddFault(new FaultRule { Operation = FalOperation.Status, Kind = "slow", Count = 1 });
        var watch = Stopwatch.StartNew();

        var (response, _) = await emulator.Get(submitted.GetProperty("status_url").GetString()!);

        Assert.True(response.IsSuccessStatusCode);
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(450), $"answered after {watch.Elapsed}");
    }

    [Fact]
    public async Task DropFault_AtSubmit_AbortsTheConnection_ButTheJobWasCreated()
    {
        await using var emulator = await Emulator.Start();

        await Assert.ThrowsAsync<HttpRequestException>(() => emulator.Submit(new { prompt = "[[fault:drop]]" }));

        Assert.Equal(1, emulator.State.SubmitCount);
        Assert.Equal(1, emulator.State.AcceptedSubmitCount);
    }

    [Fact]
    public async Task DropFaultRule_OnResult_AbortsTheConnection()
    {
        await using var emulator = await Emulator.Start();
        var submitted = await emulator.Accepted(new { prompt = "x" });
        await emulator.WaitCompleted(submitted);
        emulator.State.AddFault(new FaultRule { Operation = FalOperation.Result, Kind = "drop", Count = 1 });

        await Assert.ThrowsAsync<HttpRequestException>(() => emulator.Result(submitted));
        var (response, _) = await emulator.Result(submitted);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task StatusStreamFault_AnswersBeforeStreaming()
    {
        await using var emulator = await Emulator.Start();
        var submitted = await emulator.Accepted(new { prompt = "[[fault:429@stream]]" });

        var (response, body) = await emulator.Get(submitted.GetProperty("status_url").GetString() + "/stream");
        var (plain, _) = await emulator.Get(submitted.GetProperty("status_url").GetString()!);

        AssertInfrastructureError(response, body, 429, "rate_limited");
        Assert.True(plain.IsSuccessStatusCode);
    }

    [Fact]
    public async Task UploadFaultRule_FailsInitiate()
    {
        await using var emulator = await Emulator.Start(o => o.Faults = [new FaultRule { Operation = FalOperation.Upload, Kind = "500" }]);

        using var response = await emulator.Client.PostAsync("rest/storage/upload/initiate?storage_type=fal-cdn-v3",
            Emulator.JsonBody(new { content_type = "image/png", file_name = "a.png" }), Emulator.Ct);

        AssertInfrastructureError(response, await Emulator.ReadJson(response), 500, "internal_error");
    }

    [Fact]
    public async Task RunDirective_SetsTheJobsRunTime()
    {
        await using var emulator = await Emulator.Start(o => o.RunTime = TimeSpan.FromSeconds(30));
        var submitted = await emulator.Accepted(new { prompt = "quick [[run:50]]" });

        var status = await emulator.WaitCompleted(submitted);

        Assert.True(status.GetProperty("metrics").GetProperty("inference_time").GetDouble() < 5);
    }

    [Fact]
    public async Task FaultRule_WithUnknownKind_StopsTheStartNamingTheSetting()
    {
        var options = new FalEmulatorOptions { Faults = [new FaultRule { Operation = FalOperation.Webhook, Kind = "503" }] };

        var error = await Assert.ThrowsAsync<InvalidOperationException>(
            () => FalEmulatorHost.StartAsync(options, cancellationToken: Emulator.Ct));

        Assert.Contains("FalEmulator:Faults", error.Message, StringComparison.Ordinal);
    }

    private static void AssertInfrastructureError(HttpResponseMessage response, System.Text.Json.JsonElement body, int status, string? errorType)
    {
        Assert.Equal(status, (int)response.StatusCode);
        Assert.False(string.IsNullOrEmpty(body.GetProperty("detail").GetString()));
        if (errorType is null)
        {
            return;
        }

        Assert.Equal(errorType, body.GetProperty("error_type").GetString());
        if (status >= 500)
        {
            Assert.Equal(errorType, response.Headers.GetValues("X-Fal-Error-Type").Single());
        }

        if (status == 429)
        {
            Assert.Equal("2", response.Headers.GetValues("Retry-After").Single());
        }
    }
}
