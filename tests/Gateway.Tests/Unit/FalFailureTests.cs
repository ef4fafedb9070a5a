using System.Net;
using System.Text;
using Gateway.Hosting;
using Gateway.Upstream;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Gateway.Tests.Unit;

/// <summary>
/// fal's error answers read into a <see cref="FalFailure"/> and what the gateway answers for it (the Errors table of the
/// contract). fal is a canned in-process HttpMessageHandler: no server, no network.
/// </summary>
public sealed class FalFailureTests
{
    private const string Prefix = "urn:mai-image-gateway:problem:";
    private const string StatusUrl = "https://queue.fal.run/microsoft/mai-image-2.5/requests/abc/status";

    private sealed class CannedFal(HttpStatusCode status, string? body, Action<HttpResponseMessage>? headers = null) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = new HttpResponseMessage(status)
            {
                Content = new StringContent(body ?? "", Encoding.UTF8, "application/json"),
                RequestMessage = request,
            };
            headers?.Invoke(response);
            return Task.FromResult(response);
        }
    }

    private static readonly IMeterFactory Meters = new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>();

    private static FalQueueClient Client(HttpStatusCode status, string? body, Action<HttpResponseMessage>? headers = null) =>
        new(new HttpClient(new CannedFal(status, body, headers)), Options.Create(new FalOptions { Key = "fal-key-id:fal-key-secret" }),
            Options.Create(new FalSubmitHeaders()), new GatewayMetrics(Meters), TimeProvider.System, NullLogger<FalQueueClient>.Instance);

    private static async Task<FalFailure> SubmitFails(HttpStatusCode status, string? body, Action<HttpResponseMessage>? headers = null)
    {
        var error = await Assert.ThrowsAsync<FalUpstreamException>(() =>
            Client(status, body, headers).SubmitAsync("microsoft/mai-image-2.5", "{}"u8.ToArray(), null, TestContext.Current.CancellationToken));
        return error.Failure;
    }

    private static async Task<FalFailure> StatusFails(HttpStatusCode status, string? body, Action<HttpResponseMessage>? headers = null)
    {
        var error = await Assert.ThrowsAsync<FalUpstreamException>(() =>
            Client(status, body, headers).GetStatusAsync(StatusUrl, false, TestContext.Current.CancellationToken));
        return error.Failure;
    }

    // --- fal's error body ---

    [Fact]
    public void ParseError_ModelErrorList_GivesFieldErrorsNamedByTheirLocation()
    {
        var body = """
            {"detail":[
              {"loc":["body","prompt"],"msg":"Field required","type":"missing"},
              {"loc":["body","image_urls",0],"msg":"Input should be a valid URL","type":"url_parsing","ctx":{"error":"relative URL"}},
              {"loc":["body"],"msg":"Extra inputs are not permitted","type":"extra_forbidden"}
            ]}
            """u8.ToArray();

        var (detail, errorType, fieldErrors) = FalErrorParser.Parse(body);

        Assert.Equal("prompt: Field required; image_urls[0]: Input should be a valid URL; body: Extra inputs are not permitted", detail);
        Assert.Equal("missing", errorType);
        Assert.Equal(
            [("prompt", "Field required", "missing"), ("image_urls[0]", "Input should be a valid URL", "url_parsing"), ("body", "Extra inputs are not permitted", "extra_forbidden")],
            fieldErrors!.Select(e => (e.Field, e.Msg, e.Type)));
    }

    [Fact]
    public void ParseError_ContentPolicyViolation_IsItsErrorType()
    {
        var body = """{"detail":[{"loc":["body","prompt"],"msg":"The content could not be processed because it contained material flagged by a content checker.","type":"content_policy_violation","url":"https://docs.fal.ai/errors#content_policy_violation"}]}"""u8.ToArray();

        var (detail, errorType, fieldErrors) = FalErrorParser.Parse(body);

        Assert.Equal("prompt: The content could not be processed because it contained material flagged by a content checker.", detail);
        Assert.Equal("content_policy_violation", errorType);
        Assert.Equal("prompt", Assert.Single(fieldErrors!).Field);
    }

    [Theory]
    [InlineData("""{"detail":"Image size is too large"}""", "Image size is too large", null)]
    [InlineData("""{"detail":"Runner failed to start","error_type":"runner_scheduling_failure"}""", "Runner failed to start", "runner_scheduling_failure")]
    [InlineData("""{"error_type":"internal_error"}""", "", "internal_error")]
    [InlineData("""{"detail":{"reason":"x"}}""", """{"reason":"x"}""", null)]
    [InlineData("""{"detail":null}""", "null", null)]
    [InlineData("""{"detail":"x","error_type":7}""", "x", null)]
    [InlineData("""["not","an","object"]""", "", null)]
    [InlineData("<html>502 Bad Gateway</html>", "", null)]
    [InlineData("", "", null)]
    public void ParseError_OtherBodies_GiveTheirDetailAndErrorType(string body, string detail, string? errorType)
    {
        Assert.Equal((detail, errorType, (IReadOnlyList<FalFieldError>?)null), FalErrorParser.Parse(Encoding.UTF8.GetBytes(body)));
    }

    [Fact]
    public void ParseError_ErrorTypeBesideAList_WinsOverTheFirstEntrysType()
    {
        var (_, errorType, _) = FalErrorParser.Parse("""{"detail":[{"loc":["body","prompt"],"msg":"m","type":"value_error"}],"error_type":"bad_request"}"""u8.ToArray());

        Assert.Equal("bad_request", errorType);
    }

    // --- status codes to the gateway's answer ---

    [Fact]
    public async Task Submit422ModelError_Is422UpstreamRejected_WithFalsFieldErrors()
    {
        var failure = await SubmitFails(HttpStatusCode.UnprocessableEntity,
            """{"detail":[{"loc":["body","num_images"],"msg":"Input should be less than or equal to 4","type":"less_than_equal"},{"loc":["body","num_images"],"msg":"second","type":"x"}]}""");

        Assert.Equal(FalFailureKind.Rejected, failure.Kind);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, failure.GatewayStatus);
        Assert.Equal(422, failure.FalStatusCode);
        Assert.Equal(Prefix + "upstream-rejected", failure.ProblemType);
        Assert.Equal("fal rejected the input", failure.Title);
        Assert.Equal("num_images: Input should be less than or equal to 4; num_images: second", failure.Detail);
        Assert.Equal("less_than_equal", failure.ErrorType);
        Assert.Equal(new Dictionary<string, string[]> { ["num_images"] = ["Input should be less than or equal to 4", "second"] }, failure.Errors);
        Assert.Null(failure.RetryAfter);
    }

    [Fact]
    public async Task Submit422ContentPolicyViolation_Is422UpstreamRejected_NamingTheFieldAndType()
    {
        var failure = await SubmitFails(HttpStatusCode.UnprocessableEntity,
            """{"detail":[{"loc":["body","prompt"],"msg":"Flagged by a content checker.","type":"content_policy_violation"}]}""",
            r => r.Headers.Add("X-Fal-Retryable", "false"));

        Assert.Equal((FalFailureKind.Rejected, HttpStatusCode.UnprocessableEntity, 422), (failure.Kind, failure.GatewayStatus, failure.FalStatusCode));
        Assert.Equal(Prefix + "upstream-rejected", failure.ProblemType);
        Assert.Equal("content_policy_violation", failure.ErrorType);
        Assert.Equal("prompt: Flagged by a content checker.", failure.Detail);
        Assert.Equal(new Dictionary<string, string[]> { ["prompt"] = ["Flagged by a content checker."] }, failure.Errors);
    }

    [Fact]
    public async Task Submit400PlainStringDetail_Is422UpstreamRejected_WithThatDetail()
    {
        var failure = await SubmitFails(HttpStatusCode.BadRequest, """{"detail":"Image could not be downloaded","error_type":"bad_request"}""");

        Assert.Equal((FalFailureKind.Rejected, HttpStatusCode.UnprocessableEntity, 400), (failure.Kind, failure.GatewayStatus, failure.FalStatusCode));
        Assert.Equal("Image could not be downloaded", failure.Detail);
        Assert.Equal("bad_request", failure.ErrorType);
        Assert.Null(failure.Errors);
    }

    [Theory]
    [InlineData(HttpStatusCode.Unauthorized)]
    [InlineData(HttpStatusCode.Forbidden)]
    public async Task Submit401Or403_Is502UpstreamConfiguration_WithoutFalsBodyOrTheKey(HttpStatusCode status)
    {
        var failure = await SubmitFails(status, """{"detail":"Invalid key fal-key-id:fal-key-secret"}""");

        Assert.Equal((FalFailureKind.Misconfigured, HttpStatusCode.BadGateway, (int)status), (failure.Kind, failure.GatewayStatus, failure.FalStatusCode));
        Assert.Equal(Prefix + "upstream-configuration", failure.ProblemType);
        Assert.Equal("The gateway is not configured correctly for fal", failure.Title);
        Assert.Equal("fal refused the gateway's credentials. Operators: check the configured FAL key.", failure.Detail);
        Assert.DoesNotContain("fal-key", failure.Detail, StringComparison.Ordinal);
        Assert.Null(failure.RetryAfter);
    }

    [Fact]
    public async Task Status401_IsAlso502UpstreamConfiguration()
    {
        var failure = await StatusFails(HttpStatusCode.Unauthorized, "");

        Assert.Equal((FalFailureKind.Misconfigured, HttpStatusCode.BadGateway, 401), (failure.Kind, failure.GatewayStatus, failure.FalStatusCode));
    }

    [Fact]
    public async Task Submit402_Is503UpstreamAccount_RetryAfter60s()
    {
        var failure = await SubmitFails(HttpStatusCode.PaymentRequired, """{"detail":"User is locked. Reason: Exhausted balance."}""");

        Assert.Equal((FalFailureKind.AccountUnavailable, HttpStatusCode.ServiceUnavailable, 402), (failure.Kind, failure.GatewayStatus, failure.FalStatusCode));
        Assert.Equal(Prefix + "upstream-account", failure.ProblemType);
        Assert.Equal("The fal account cannot take requests", failure.Title);
        Assert.Equal("User is locked. Reason: Exhausted balance.", failure.Detail);
        Assert.Equal(TimeSpan.FromSeconds(60), failure.RetryAfter);
    }

    [Theory]
    [InlineData("locked")]
    [InlineData("account_locked")]
    [InlineData("user_locked")]
    public async Task StatusCallWithLockedErrorType_Is503UpstreamAccount(string errorType)
    {
        var failure = await StatusFails(HttpStatusCode.BadRequest, """{"detail":"locked"}""", r => r.Headers.Add("X-Fal-Error-Type", errorType));

        Assert.Equal((FalFailureKind.AccountUnavailable, HttpStatusCode.ServiceUnavailable, errorType), (failure.Kind, failure.GatewayStatus, failure.ErrorType));
    }

    [Fact]
    public async Task Submit429WithRetryAfter_Is429RateLimited_KeepingFalsRetryAfter()
    {
        var failure = await SubmitFails(HttpStatusCode.TooManyRequests, """{"detail":"Queue is full"}""", r => r.Headers.Add("Retry-After", "17"));

        Assert.Equal((FalFailureKind.RateLimited, HttpStatusCode.TooManyRequests, 429), (failure.Kind, failure.GatewayStatus, failure.FalStatusCode));
        Assert.Equal(Prefix + "rate-limited", failure.ProblemType);
        Assert.Equal("fal is rate limiting requests", failure.Title);
        Assert.Equal("Queue is full", failure.Detail);
        Assert.Equal(TimeSpan.FromSeconds(17), failure.RetryAfter);
    }

    [Fact]
    public async Task Submit429WithoutRetryAfter_Is429RateLimited_RetryAfter5s()
    {
        var failure = await SubmitFails(HttpStatusCode.TooManyRequests, "");

        Assert.Equal((FalFailureKind.RateLimited, HttpStatusCode.TooManyRequests), (failure.Kind, failure.GatewayStatus));
        Assert.Equal("fal answered 429 to the submit call.", failure.Detail);
        Assert.Equal(TimeSpan.FromSeconds(5), failure.RetryAfter);
    }

    [Fact]
    public async Task InfrastructureErrorWithErrorTypeHeader_Is502UpstreamError_CarryingTheType()
    {
        var failure = await StatusFails(HttpStatusCode.ServiceUnavailable, """{"detail":"Runner disconnected"}""",
            r => r.Headers.Add("X-Fal-Error-Type", "runner_disconnected"));

        Assert.Equal((FalFailureKind.BadGateway, HttpStatusCode.BadGateway, 503), (failure.Kind, failure.GatewayStatus, failure.FalStatusCode));
        Assert.Equal(Prefix + "upstream-error", failure.ProblemType);
        Assert.Equal("fal failed to answer", failure.Title);
        Assert.Equal("Runner disconnected", failure.Detail);
        Assert.Equal("runner_disconnected", failure.ErrorType);
        Assert.Null(failure.RetryAfter);
    }

    [Fact]
    public async Task InfrastructureErrorTypeInTheBody_WinsOverTheHeader()
    {
        var failure = await StatusFails(HttpStatusCode.InternalServerError, """{"detail":"boom","error_type":"runner_server_error"}""",
            r => r.Headers.Add("X-Fal-Error-Type", "internal_error"));

        Assert.Equal((FalFailureKind.BadGateway, HttpStatusCode.BadGateway, "runner_server_error"), (failure.Kind, failure.GatewayStatus, failure.ErrorType));
    }

    [Fact]
    public async Task Status504_Is504UpstreamTimeout()
    {
        var failure = await StatusFails(HttpStatusCode.GatewayTimeout, """{"detail":"Request timed out","error_type":"request_timeout"}""",
            r => r.Headers.Add("X-Fal-Request-Timeout-Type", "user"));

        Assert.Equal((FalFailureKind.Timeout, HttpStatusCode.GatewayTimeout, 504), (failure.Kind, failure.GatewayStatus, failure.FalStatusCode));
        Assert.Equal(Prefix + "upstream-timeout", failure.ProblemType);
        Assert.Equal("fal did not answer in time", failure.Title);
        Assert.Equal("request_timeout", failure.ErrorType);
    }

    [Fact]
    public async Task Status422_IsNotTheCallersInput_So502()
    {
        // Only a submit carries the caller's input; a 422 to a status call is fal misbehaving.
        var failure = await StatusFails(HttpStatusCode.UnprocessableEntity, """{"detail":[{"loc":["path","request_id"],"msg":"bad","type":"x"}]}""");

        Assert.Equal((FalFailureKind.BadGateway, HttpStatusCode.BadGateway, 422), (failure.Kind, failure.GatewayStatus, failure.FalStatusCode));
        Assert.Equal(new Dictionary<string, string[]> { ["path.request_id"] = ["bad"] }, failure.Errors);
    }

    [Fact]
    public async Task NonJsonErrorBody_GivesADetailNamingTheCodeAndCall()
    {
        var failure = await StatusFails(HttpStatusCode.BadGateway, "<html><body>502 Bad Gateway</body></html>");

        Assert.Equal((FalFailureKind.BadGateway, HttpStatusCode.BadGateway), (failure.Kind, failure.GatewayStatus));
        Assert.Equal("fal answered 502 to the status call.", failure.Detail);
        Assert.Null(failure.ErrorType);
    }

    [Fact]
    public async Task Cancel400_IsAlreadyCompleted_AndAny2xxIsRequested()
    {
        var ct = TestContext.Current.CancellationToken;
        const string url = "https://queue.fal.run/microsoft/mai-image-2.5/requests/abc/cancel";

        Assert.Equal(FalCancelOutcome.AlreadyCompleted, await Client(HttpStatusCode.BadRequest, """{"status":"ALREADY_COMPLETED"}""").CancelAsync(url, ct));
        Assert.Equal(FalCancelOutcome.Requested, await Client(HttpStatusCode.Accepted, """{"status":"CANCELLATION_REQUESTED"}""").CancelAsync(url, ct));
        Assert.Equal(FalCancelOutcome.Requested, await Client(HttpStatusCode.OK, """{"status":"OK"}""").CancelAsync(url, ct));
    }

    [Theory]
    [InlineData(HttpStatusCode.OK)]
    [InlineData(HttpStatusCode.UnprocessableEntity)]
    [InlineData(HttpStatusCode.MethodNotAllowed)]
    [InlineData((HttpStatusCode)499)]
    public async Task Result_AnswerAboutTheJob_IsReturnedWithItsCode(HttpStatusCode status)
    {
        var body = await Client(status, """{"detail":"x"}""").GetResultAsync(StatusUrl[..^"/status".Length], TestContext.Current.CancellationToken);

        Assert.Equal((int)status, body.StatusCode);
        Assert.Equal("""{"detail":"x"}""", Encoding.UTF8.GetString(body.Body));
    }

    [Theory]
    [InlineData(HttpStatusCode.BadRequest, FalFailureKind.BadGateway)] // fal: 400 while not completed
    [InlineData(HttpStatusCode.NotFound, FalFailureKind.BadGateway)] // fal: 404 unknown id
    [InlineData(HttpStatusCode.RequestTimeout, FalFailureKind.BadGateway)]
    [InlineData(HttpStatusCode.Unauthorized, FalFailureKind.Misconfigured)]
    [InlineData(HttpStatusCode.PaymentRequired, FalFailureKind.AccountUnavailable)]
    [InlineData(HttpStatusCode.TooManyRequests, FalFailureKind.RateLimited)]
    [InlineData(HttpStatusCode.InternalServerError, FalFailureKind.BadGateway)]
    [InlineData(HttpStatusCode.GatewayTimeout, FalFailureKind.Timeout)]
    public async Task Result_AnswerNotAboutTheJob_IsAFailure(HttpStatusCode status, FalFailureKind kind)
    {
        var error = await Assert.ThrowsAsync<FalUpstreamException>(() =>
            Client(status, "").GetResultAsync(StatusUrl[..^"/status".Length], TestContext.Current.CancellationToken));

        Assert.Equal((kind, (int)status), (error.Failure.Kind, error.Failure.FalStatusCode));
    }

    // --- the failure as the gateway's problem ---

    [Theory]
    [InlineData(422, 422, "The generation failed")]
    [InlineData(400, 422, "The generation failed")]
    [InlineData(404, 422, "The generation failed")]
    [InlineData(499, 502, "The generation was cancelled")]
    [InlineData(500, 502, "The generation failed")]
    [InlineData(503, 502, "The generation failed")]
    [InlineData(null, 502, "The generation failed")]
    public void JobFailed_IsGenerationFailed_422ForFals4xx_Else502(int? falStatus, int gatewayStatus, string title)
    {
        var failure = new FalFailure(FalFailureKind.JobFailed, falStatus, "d");

        Assert.Equal((gatewayStatus, title, Prefix + "generation-failed"), ((int)failure.GatewayStatus, failure.Title, failure.ProblemType));
    }

    [Fact]
    public void JobFailed_RequestCancelled_IsTitledCancelled()
    {
        Assert.Equal("The generation was cancelled", new FalFailure(FalFailureKind.JobFailed, null, "d", "request_cancelled").Title);
    }

    [Theory]
    [InlineData(FalFailureKind.Rejected, 422, "upstream-rejected")]
    [InlineData(FalFailureKind.RateLimited, 429, "rate-limited")]
    [InlineData(FalFailureKind.Misconfigured, 502, "upstream-configuration")]
    [InlineData(FalFailureKind.AccountUnavailable, 503, "upstream-account")]
    [InlineData(FalFailureKind.BadGateway, 502, "upstream-error")]
    [InlineData(FalFailureKind.Timeout, 504, "upstream-timeout")]
    [InlineData(FalFailureKind.CircuitOpen, 503, "upstream-unavailable")]
    public void EachKind_HasTheContractsStatusAndProblemType(FalFailureKind kind, int status, string slug)
    {
        var failure = new FalFailure(kind, 500, "d");

        Assert.Equal((status, Prefix + slug), ((int)failure.GatewayStatus, failure.ProblemType));
    }

    [Fact]
    public void FieldErrors_WithoutMsg_FallBackToTheirTypeThenInvalid()
    {
        var failure = new FalFailure(FalFailureKind.Rejected, 422, "d", FieldErrors:
        [
            new FalFieldError(null, null, "missing"),
            new FalFieldError(null, null, null),
        ]);

        Assert.Equal(new Dictionary<string, string[]> { ["body"] = ["missing", "invalid"] }, failure.Errors);
        Assert.Null(new FalFailure(FalFailureKind.Rejected, 422, "d", FieldErrors: []).Errors);
    }

    [Fact]
    public void ProblemMapper_RateLimited_Gives429ProblemWithRetryAfterHeaderAndFalsStatus()
    {
        var context = new DefaultHttpContext();
        var failure = new FalFailure(FalFailureKind.RateLimited, 429, "Queue is full", "queue_full", RetryAfter: TimeSpan.FromSeconds(2.1));

        var problem = new FalProblemMapper(NullLogger<FalProblemMapper>.Instance).TryMap(context, new FalUpstreamException(failure))!;

        Assert.Equal((Prefix + "rate-limited", "fal is rate limiting requests", 429, "Queue is full"), (problem.Type, problem.Title, problem.Status, problem.Detail));
        Assert.Equal(429, problem.Extensions["fal_status"]);
        Assert.Equal("queue_full", problem.Extensions["fal_error_type"]);
        Assert.False(problem.Extensions.ContainsKey("errors"));
        Assert.Equal("3", context.Response.Headers.RetryAfter.ToString());
    }

    [Fact]
    public void ProblemMapper_Rejected_Gives422ProblemWithFalsFieldErrors()
    {
        var context = new DefaultHttpContext();
        var (detail, errorType, fieldErrors) = FalErrorParser.Parse(
            """{"detail":[{"loc":["body","prompt"],"msg":"Flagged by a content checker.","type":"content_policy_violation"}]}"""u8.ToArray());
        var failure = new FalFailure(FalFailureKind.Rejected, 422, detail, errorType, fieldErrors);

        var problem = new FalProblemMapper(NullLogger<FalProblemMapper>.Instance).TryMap(context, new FalUpstreamException(failure))!;

        Assert.Equal((Prefix + "upstream-rejected", 422), (problem.Type, problem.Status));
        Assert.Equal(422, problem.Extensions["fal_status"]);
        Assert.Equal("content_policy_violation", problem.Extensions["fal_error_type"]);
        Assert.Equal(new Dictionary<string, string[]> { ["prompt"] = ["Flagged by a content checker."] }, problem.Extensions["errors"]);
        Assert.False(context.Response.Headers.ContainsKey("Retry-After"));
    }

    [Fact]
    public void ProblemMapper_OtherExceptions_AreNotMapped() =>
        Assert.Null(new FalProblemMapper(NullLogger<FalProblemMapper>.Instance).TryMap(new DefaultHttpContext(), new InvalidOperationException()));
}
