using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;

namespace Gateway.Hosting;

/// <summary>
/// The last of the problem writers: the framework's own writes only to a request that accepts JSON, and refuses one
/// that accepts, say, only <c>text/event-stream</c> (a browser's EventSource) or an image (an <c>&lt;img&gt;</c>).
/// The gateway speaks problems in JSON to everyone (the contract says so), so this one writes what the framework's
/// would have written: the same customisation (trace id, types, details) and <c>application/problem+json</c>.
/// </summary>
internal sealed class AnyAcceptProblemWriter(IOptions<ProblemDetailsOptions> options, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json) : IProblemDetailsWriter
{
    public bool CanWrite(ProblemDetailsContext context) => true;

    public ValueTask WriteAsync(ProblemDetailsContext context)
    {
        var httpContext = context.HttpContext;
        var problem = context.ProblemDetails;
        problem.Status ??= httpContext.Response.StatusCode;
        problem.Title ??= ReasonPhrases.GetReasonPhrase(problem.Status.Value) is { Length: > 0 } phrase ? phrase : null;
        options.Value.CustomizeProblemDetails?.Invoke(context);
        var typeInfo = json.Value.SerializerOptions.GetTypeInfo(problem.GetType());
        return new ValueTask(httpContext.Response.WriteAsJsonAsync(problem, typeInfo, "application/problem+json", httpContext.RequestAborted));
    }
}
