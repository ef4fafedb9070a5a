using System.Diagnostics;
using System.Globalization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Gateway.Hosting;

/// <summary>
/// Every problem the gateway writes passes through here: the trace id, JSON field names in validation errors,
/// the shape of 413/415 refusals, and a gateway problem type for whatever the framework left untyped.
/// </summary>
internal sealed class GatewayProblemDetails(ValidationFieldNames fieldNames) : IConfigureOptions<ProblemDetailsOptions>
{
    public void Configure(ProblemDetailsOptions options) => options.CustomizeProblemDetails = Customize;

    private void Customize(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        problem.Extensions.Remove("traceId");
        problem.Extensions["trace_id"] = Activity.Current?.TraceId.ToString() ?? context.HttpContext.TraceIdentifier;
        if (problem is HttpValidationProblemDetails validation)
        {
            var named = fieldNames.ToJsonNames(validation.Errors);
            validation.Errors.Clear();
            foreach (var (field, messages) in named)
            {
                validation.Errors[field] = messages;
            }
        }

        ShapeBodyRefusal(problem);
        if (problem.Type is null || problem.Type.StartsWith("https://tools.ietf.org", StringComparison.Ordinal))
        {
            if (problem is HttpValidationProblemDetails)
            {
                problem.Type = ProblemTypes.Validation;
                problem.Title = "The request is not valid";
                problem.Detail ??= "One or more fields are invalid; see errors.";
            }
            else
            {
                problem.Type = ProblemTypes.ForStatus(problem.Status);
            }
        }

        problem.Detail ??= DefaultDetail(context.HttpContext, problem);
    }

    /// <summary>Every problem says what happened (the contract's Problem requires detail), also those the framework raises.</summary>
    private static string DefaultDetail(HttpContext httpContext, ProblemDetails problem)
    {
        var request = httpContext.Request;
        return problem.Status switch
        {
            StatusCodes.Status404NotFound => $"There is nothing at {request.Path}; the routes are listed in the OpenAPI document (/swagger).",
            StatusCodes.Status405MethodNotAllowed => $"{request.Path} does not take {request.Method}; it takes {httpContext.Response.Headers.Allow}.",
            _ => problem.Title ?? "The request failed.",
        };
    }

    /// <summary>A body refused as too large (413) or not JSON (415), wherever it was refused: one type, one field, one default detail.</summary>
    private static void ShapeBodyRefusal(ProblemDetails problem)
    {
        var (type, field, detail) = problem.Status switch
        {
            StatusCodes.Status413PayloadTooLarge => (ProblemTypes.BodyTooLarge, "body",
                "The request body is larger than the gateway accepts (Gateway__MaxRequestBodyBytes)."),
            StatusCodes.Status415UnsupportedMediaType => (ProblemTypes.UnsupportedMediaType, "Content-Type",
                "Send the body as JSON with Content-Type: application/json."),
            _ => (null, null, null),
        };
        if (type is null)
        {
            return;
        }

        problem.Type = type;
        problem.Detail ??= detail;
        if (problem is not HttpValidationProblemDetails { Errors.Count: > 0 })
        {
            problem.Extensions.TryAdd("errors", new Dictionary<string, string[]> { [field!] = [problem.Detail!] });
        }
    }

    /// <summary>The title of a 413/415 refusal the gateway raises itself.</summary>
    public static string? BodyRefusalTitle(int status) => status switch
    {
        StatusCodes.Status413PayloadTooLarge => "Request body too large",
        StatusCodes.Status415UnsupportedMediaType => "Unsupported media type",
        _ => null,
    };

    /// <summary>503 with Retry-After: a dependency (Redis) is briefly unreachable; reconnect attempts run at most a second apart.</summary>
    public static ProblemDetails Unavailable(HttpContext httpContext, string type, string detail)
    {
        httpContext.Response.Headers.RetryAfter = "2";
        return new ProblemDetails
        {
            Type = type,
            Title = "Temporarily unavailable",
            Status = StatusCodes.Status503ServiceUnavailable,
            Detail = detail,
        };
    }

    /// <summary>Retry-After in whole seconds, at least one.</summary>
    public static void SetRetryAfter(HttpContext httpContext, TimeSpan retryAfter) =>
        httpContext.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// Turns a feature's own exceptions into problems. Each feature registers its mapper in its <c>AddXxx</c>;
/// <see cref="GatewayExceptionHandler"/> asks them in turn, so Hosting knows no feature's exception types.
/// </summary>
internal interface IProblemMapper
{
    /// <summary>The problem for <paramref name="exception"/>, or null when it is not this feature's.</summary>
    ProblemDetails? TryMap(HttpContext httpContext, Exception exception);
}
