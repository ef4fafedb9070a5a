using System.Globalization;
using System.Text.Json;
using Gateway.Clients;
using Gateway.Upstream;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;
using Gateway.Storage;
using StackExchange.Redis;

namespace Gateway.Hosting;

/// <summary>The one place where exceptions become problem details (and are logged).</summary>
internal sealed partial class GatewayExceptionHandler(IProblemDetailsService problems, ILogger<GatewayExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is OperationCanceledException && httpContext.RequestAborted.IsCancellationRequested)
        {
            httpContext.Response.StatusCode = 499; // the client went away; nobody reads this answer
            return true;
        }

        var problem = exception switch
        {
            FalUpstreamException upstream => FromUpstream(httpContext, upstream.Failure),
            BadHttpRequestException bad => FromBadRequest(bad),
            StoreUnavailableException unavailable => Unavailable(httpContext, unavailable.Message, exception),
            RedisException or RedisTimeoutException => Unavailable(httpContext, "The gateway's store (Redis) is not reachable.", exception),
            ClientLimitsUnavailableException => Unavailable(httpContext,
                "The client limits cannot be checked because Redis is not reachable; nothing was sent to fal. Retry shortly.", exception, "limits-unavailable"),
            _ => Unexpected(exception),
        };

        httpContext.Response.StatusCode = problem.Status ?? StatusCodes.Status500InternalServerError;
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = httpContext, ProblemDetails = problem, Exception = exception });
    }

    private ProblemDetails FromUpstream(HttpContext httpContext, FalFailure failure)
    {
        LogUpstream(logger, failure.Kind, failure.FalStatusCode, httpContext.Request.Path);
        if (failure.RetryAfter is { } retryAfter)
        {
            httpContext.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        }

        var problem = new ProblemDetails
        {
            Type = ProblemTypes.For(failure.ProblemSlug),
            Title = failure.Title,
            Status = (int)failure.GatewayStatus,
            Detail = failure.Detail,
        };
        problem.Extensions["fal_status"] = failure.FalStatusCode;
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

    private static HttpValidationProblemDetails FromBadRequest(BadHttpRequestException exception)
    {
        var (field, message, slug) = exception switch
        {
            { StatusCode: StatusCodes.Status413PayloadTooLarge } =>
                ("body", "The request body is larger than the gateway accepts.", "body-too-large"),
            { StatusCode: StatusCodes.Status415UnsupportedMediaType } =>
                ("Content-Type", "Send the body as JSON with Content-Type: application/json.", "unsupported-media-type"),
            { InnerException: JsonException json } when JsonBodyError.From(json) is var error =>
                (error.Field, error.Message, error.Kind == JsonBodyErrorKind.Malformed ? "malformed-json" : "validation"),
            _ when exception.Message.Contains("body", StringComparison.OrdinalIgnoreCase) =>
                ("body", "A JSON object body is required.", "validation"),
            _ => ("request", exception.Message, "bad-request"),
        };

        return new HttpValidationProblemDetails(new Dictionary<string, string[]> { [field] = [message] })
        {
            Type = ProblemTypes.For(slug),
            Title = exception.StatusCode switch
            {
                StatusCodes.Status413PayloadTooLarge => "Request body too large",
                StatusCodes.Status415UnsupportedMediaType => "Unsupported media type",
                _ => "The request is not valid",
            },
            Status = exception.StatusCode,
            Detail = message,
        };
    }

    private ProblemDetails Unavailable(HttpContext httpContext, string detail, Exception exception, string slug = "store-unavailable")
    {
        // The connection logs its loss and return once; a stack trace per refused request would flood the log.
        LogStoreUnavailable(logger, exception.GetType().Name, exception.Message);
        httpContext.Response.Headers.RetryAfter = "2"; // reconnect attempts run at most a second apart
        return new ProblemDetails
        {
            Type = ProblemTypes.For(slug),
            Title = "Temporarily unavailable",
            Status = StatusCodes.Status503ServiceUnavailable,
            Detail = detail,
        };
    }

    private ProblemDetails Unexpected(Exception exception)
    {
        LogUnexpected(logger, exception);
        return new ProblemDetails
        {
            Type = ProblemTypes.For("internal"),
            Title = "Unexpected error",
            Status = StatusCodes.Status500InternalServerError,
            Detail = "The gateway failed to handle the request; the trace id identifies it in the logs.",
        };
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Upstream failure {Kind} (fal status {FalStatus}) on {Path}")]
    private static partial void LogUpstream(ILogger logger, FalFailureKind kind, int? falStatus, PathString path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The store is unavailable: {ExceptionType}: {ExceptionMessage}")]
    private static partial void LogStoreUnavailable(ILogger logger, string exceptionType, string exceptionMessage);

    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled exception")]
    private static partial void LogUnexpected(ILogger logger, Exception exception);
}
