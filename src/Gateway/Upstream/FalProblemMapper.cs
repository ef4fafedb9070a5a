using Gateway.Hosting;
using Microsoft.AspNetCore.Mvc;

namespace Gateway.Upstream;

/// <summary>A failed call to fal as the contract's upstream problem (status, fal's status and error type, field errors).</summary>
internal sealed partial class FalProblemMapper(ILogger<FalProblemMapper> logger) : IProblemMapper
{
    public ProblemDetails? TryMap(HttpContext httpContext, Exception exception)
    {
        if (exception is not FalUpstreamException { Failure: var failure })
        {
            return null;
        }

        LogUpstream(logger, failure.Kind, failure.FalStatusCode, httpContext.Request.Path);
        if (failure.RetryAfter is { } retryAfter)
        {
            GatewayProblemDetails.SetRetryAfter(httpContext, retryAfter);
        }

        var problem = new ProblemDetails
        {
            Type = failure.ProblemType,
            Title = failure.Title,
            Status = (int)failure.GatewayStatus,
            Detail = failure.Detail,
        };
        // Extensions are present when known, never null (the contract's Problem schema).
        if (failure.FalStatusCode is { } falStatus)
        {
            problem.Extensions["fal_status"] = falStatus;
        }

        if (failure.ErrorType is not null)
        {
            problem.Extensions["fal_error_type"] = failure.ErrorType;
        }

        if (failure.Errors is { } errors)
        {
            problem.Extensions["errors"] = errors;
        }

        return problem;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Upstream failure {Kind} (fal status {FalStatus}) on {Path}")]
    private static partial void LogUpstream(ILogger logger, FalFailureKind kind, int? falStatus, PathString path);
}
