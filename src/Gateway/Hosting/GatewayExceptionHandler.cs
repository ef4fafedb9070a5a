using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace Gateway.Hosting;

/// <summary>
/// The one place where exceptions become problem details (and are logged): a feature's own exceptions through
/// the <see cref="IProblemMapper"/> it registered, request binding failures here, anything else as a 500.
/// </summary>
internal sealed partial class GatewayExceptionHandler(
    IProblemDetailsService problems, IEnumerable<IProblemMapper> mappers, ILogger<GatewayExceptionHandler> logger) : IExceptionHandler
{
    private readonly IProblemMapper[] _mappers = [.. mappers];

    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is OperationCanceledException && httpContext.RequestAborted.IsCancellationRequested)
        {
            httpContext.Response.StatusCode = 499; // the client went away; nobody reads this answer
            return true;
        }

        var problem = exception is BadHttpRequestException bad ? FromBadRequest(bad) : FromFeatures(httpContext, exception) ?? Unexpected(exception);
        httpContext.Response.StatusCode = problem.Status ?? StatusCodes.Status500InternalServerError;
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = httpContext, ProblemDetails = problem, Exception = exception });
    }

    private ProblemDetails? FromFeatures(HttpContext httpContext, Exception exception)
    {
        foreach (var mapper in _mappers)
        {
            if (mapper.TryMap(httpContext, exception) is { } problem)
            {
                return problem;
            }
        }

        return null;
    }

    private static ProblemDetails FromBadRequest(BadHttpRequestException exception)
    {
        if (GatewayProblemDetails.BodyRefusalTitle(exception.StatusCode) is { } title)
        {
            return new ProblemDetails { Title = title, Status = exception.StatusCode }; // shaped by GatewayProblemDetails
        }

        var (field, message, type) = JsonBodyError.From(exception) is { } error
            ? (error.Field, error.Message, error.Kind == JsonBodyErrorKind.Malformed ? ProblemTypes.MalformedJson : ProblemTypes.Validation)
            : ("request", exception.Message, ProblemTypes.BadRequest);
        return new HttpValidationProblemDetails(new Dictionary<string, string[]> { [field] = [message] })
        {
            Type = type,
            Title = "The request is not valid",
            Status = exception.StatusCode,
            Detail = message,
        };
    }

    private ProblemDetails Unexpected(Exception exception)
    {
        LogUnexpected(logger, exception);
        return new ProblemDetails
        {
            Type = ProblemTypes.Internal,
            Title = "Unexpected error",
            Status = StatusCodes.Status500InternalServerError,
            Detail = "The gateway failed to handle the request; the trace id identifies it in the logs.",
        };
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled exception")]
    private static partial void LogUnexpected(ILogger logger, Exception exception);
}
