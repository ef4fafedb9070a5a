using Gateway.Hosting;
using Microsoft.AspNetCore.Mvc;

namespace Gateway.Clients;

/// <summary>
/// The gateway's 401, whatever scheme refused the caller (client key, signed link, access token): the Bearer
/// challenge of RFC 6750 in <c>WWW-Authenticate</c> and a problem body that says what to send.
/// </summary>
internal static class CallerChallenge
{
    /// <summary>The 401; <paramref name="challengeParameters"/> go after the realm, e.g. <c>error="invalid_token"</c>.</summary>
    public static Task WriteAsync(HttpContext httpContext, string title, string detail, string? challengeParameters = null)
    {
        httpContext.Response.StatusCode = StatusCodes.Status401Unauthorized;
        httpContext.Response.Headers.WWWAuthenticate = "Bearer realm=\"mai-image-gateway\"" + (challengeParameters is null ? "" : ", " + challengeParameters);
        return WriteProblemAsync(httpContext, new ProblemDetails
        {
            Type = ProblemTypes.Unauthorized,
            Title = title,
            Status = StatusCodes.Status401Unauthorized,
            Detail = detail,
        });
    }

    public static Task WriteProblemAsync(HttpContext httpContext, ProblemDetails problem) =>
        httpContext.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            ProblemDetails = problem,
        }).AsTask();
}
