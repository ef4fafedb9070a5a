using Gateway.Hosting;
using Microsoft.AspNetCore.Mvc;
using StackExchange.Redis;

namespace Gateway.Storage;

/// <summary>An unreachable store (Redis) as 503 with Retry-After.</summary>
internal sealed partial class StoreProblemMapper(ILogger<StoreProblemMapper> logger) : IProblemMapper
{
    public ProblemDetails? TryMap(HttpContext httpContext, Exception exception)
    {
        var detail = exception switch
        {
            StoreUnavailableException unavailable => unavailable.Message,
            _ when RedisFailure.IsUnavailable(exception) => "The gateway's store (Redis) is not reachable.",
            _ => null,
        };
        if (detail is null)
        {
            return null;
        }

        // The connection logs its loss and return once; a stack trace per refused request would flood the log.
        LogStoreUnavailable(logger, exception.GetType().Name, exception.Message);
        return GatewayProblemDetails.Unavailable(httpContext, ProblemTypes.StoreUnavailable, detail);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The store is unavailable: {ExceptionType}: {ExceptionMessage}")]
    private static partial void LogStoreUnavailable(ILogger logger, string exceptionType, string exceptionMessage);
}
