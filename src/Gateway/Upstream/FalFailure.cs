using System.Net;
using Gateway.Hosting;

namespace Gateway.Upstream;

/// <summary>What went wrong talking to fal, in the gateway's terms (the contract's upstream table).</summary>
public enum FalFailureKind
{
    /// <summary>fal refused the input (422, content policy): 422 with fal's field errors.</summary>
    Rejected,
    RateLimited,
    /// <summary>fal says the gateway's key is wrong (401/403): 502, logged as a configuration error.</summary>
    Misconfigured,
    /// <summary>No credit or a locked account (402): 503.</summary>
    AccountUnavailable,
    /// <summary>5xx after bounded retries, an unreachable host, or an answer that makes no sense: 502.</summary>
    BadGateway,
    Timeout,
    CircuitOpen,
    /// <summary>The job failed at fal (its result call answered an error): the generation is FAILED.</summary>
    JobFailed,
}

/// <summary>A failure of a call to fal. Never carries the key or a caller's credentials.</summary>
public sealed record FalFailure(
    FalFailureKind Kind,
    int? FalStatusCode,
    string Detail,
    string? ErrorType = null,
    IReadOnlyList<FalFieldError>? FieldErrors = null,
    TimeSpan? RetryAfter = null)
{
    public HttpStatusCode GatewayStatus => Kind switch
    {
        FalFailureKind.Rejected => HttpStatusCode.UnprocessableEntity,
        FalFailureKind.RateLimited => HttpStatusCode.TooManyRequests,
        FalFailureKind.Misconfigured => HttpStatusCode.BadGateway,
        FalFailureKind.AccountUnavailable => HttpStatusCode.ServiceUnavailable,
        FalFailureKind.BadGateway => HttpStatusCode.BadGateway,
        FalFailureKind.Timeout => HttpStatusCode.GatewayTimeout,
        FalFailureKind.CircuitOpen => HttpStatusCode.ServiceUnavailable,
        FalFailureKind.JobFailed => FalStatusCode is >= 400 and < 500 and not 499 ? HttpStatusCode.UnprocessableEntity : HttpStatusCode.BadGateway,
        _ => HttpStatusCode.BadGateway,
    };

    public string Title => Kind switch
    {
        FalFailureKind.Rejected => "fal rejected the input",
        FalFailureKind.RateLimited => "fal is rate limiting requests",
        FalFailureKind.Misconfigured => "The gateway is not configured correctly for fal",
        FalFailureKind.AccountUnavailable => "The fal account cannot take requests",
        FalFailureKind.BadGateway => "fal failed to answer",
        FalFailureKind.Timeout => "fal did not answer in time",
        FalFailureKind.CircuitOpen => "fal is unavailable",
        FalFailureKind.JobFailed when ErrorType == "request_cancelled" || FalStatusCode == 499 => "The generation was cancelled",
        FalFailureKind.JobFailed => "The generation failed",
        _ => "fal failed",
    };

    public string ProblemType => Kind switch
    {
        FalFailureKind.Rejected => ProblemTypes.UpstreamRejected,
        FalFailureKind.RateLimited => ProblemTypes.RateLimited,
        FalFailureKind.Misconfigured => ProblemTypes.UpstreamConfiguration,
        FalFailureKind.AccountUnavailable => ProblemTypes.UpstreamAccount,
        FalFailureKind.BadGateway => ProblemTypes.UpstreamError,
        FalFailureKind.Timeout => ProblemTypes.UpstreamTimeout,
        FalFailureKind.CircuitOpen => ProblemTypes.UpstreamUnavailable,
        FalFailureKind.JobFailed => ProblemTypes.GenerationFailed,
        _ => ProblemTypes.UpstreamError,
    };

    /// <summary>fal's field errors as a validation-problem <c>errors</c> map.</summary>
    public Dictionary<string, string[]>? Errors => FieldErrors is { Count: > 0 } errors
        ? errors.GroupBy(e => e.Field).ToDictionary(g => g.Key, g => g.Select(e => e.Msg ?? e.Type ?? "invalid").ToArray())
        : null;
}

public sealed class FalUpstreamException(FalFailure failure, Exception? inner = null)
    : Exception($"{failure.Title}: {failure.Detail}", inner)
{
    public FalFailure Failure { get; } = failure;
}
