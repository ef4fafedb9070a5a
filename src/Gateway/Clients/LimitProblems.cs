using Gateway.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Gateway.Clients;

/// <summary>The client limits' problems: a refused submit (429) and limits that cannot be checked (503).</summary>
internal sealed partial class LimitProblems(ILogger<LimitProblems> logger) : IProblemMapper
{
    /// <summary>A client limit refused the submit before anything reached fal (headers are written by the decision).</summary>
    public static ProblemHttpResult LimitExceeded(LimitDecision decision) => TypedResults.Problem(
        title: "Client limit reached",
        detail: decision.RefusalDetail(),
        statusCode: StatusCodes.Status429TooManyRequests,
        type: ProblemTypes.LimitExceeded,
        extensions: new Dictionary<string, object?>
        {
            ["limits"] = decision.ExceededNames(),
            ["retry_after_seconds"] = decision.RetryAfterSeconds,
        });

    public ProblemDetails? TryMap(HttpContext httpContext, Exception exception)
    {
        if (exception is not ClientLimitsUnavailableException)
        {
            return null;
        }

        LogLimitsUnavailable(logger, exception.InnerException?.GetType().Name, exception.InnerException?.Message);
        return GatewayProblemDetails.Unavailable(httpContext, ProblemTypes.LimitsUnavailable,
            "The client limits cannot be checked because Redis is not reachable; nothing was sent to fal. Retry shortly.");
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The client limits are unavailable: {ExceptionType}: {ExceptionMessage}")]
    private static partial void LogLimitsUnavailable(ILogger logger, string? exceptionType, string? exceptionMessage);
}
