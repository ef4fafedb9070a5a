using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.Extensions.Options;

namespace Gateway.Hosting;

/// <summary>Which browser origins may call the API (section <c>Cors</c>).</summary>
public sealed class BrowserCorsOptions
{
    public const string SectionName = "Cors";

    /// <summary>Exact origins (<c>https://design.corp.example</c>); empty: no CORS headers at all (Development adds any loopback http origin).</summary>
    public List<string> AllowedOrigins { get; set; } = [];
}

internal sealed class BrowserCorsOptionsValidator : IValidateOptions<BrowserCorsOptions>
{
    public ValidateOptionsResult Validate(string? name, BrowserCorsOptions options)
    {
        var failures = new List<string>();
        for (var i = 0; i < options.AllowedOrigins.Count; i++)
        {
            if (!BrowserCors.IsOrigin(options.AllowedOrigins[i]))
            {
                failures.Add($"Cors__AllowedOrigins__{i} must be an origin: scheme, host and port only, e.g. https://design.corp.example or http://localhost:5173 (got '{options.AllowedOrigins[i]}').");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

/// <summary>
/// CORS for browser frontends on other origins, on the routes a feature opens to them (<see cref="AllowBrowsers"/>) and
/// nowhere else. The caller's origin is echoed (never <c>*</c>), with <c>Vary: Origin</c>; a preflight is allowed the
/// method it asks for when the route has it (routing answers 405 otherwise) and the headers a frontend sends.
/// </summary>
internal static class BrowserCors
{
    public const string PolicyName = "browsers";

    /// <summary>What frontends send: credentials, JSON, the API's own headers, and what @fal-ai/client sends through the proxy.</summary>
    private static readonly string[] RequestHeaders =
    [
        "authorization", "content-type", "x-api-key", "idempotency-key", "prefer", "last-event-id",
        "x-fal-target-url", "x-fal-queue-priority", "x-fal-runner-hint", "x-fal-request-timeout", "x-fal-request-timeout-type",
        "x-fal-object-lifecycle-preference",
    ];

    /// <summary>What frontends read: where the job is, when to retry, the limits, what the server did with their preferences, fal's request id.</summary>
    private static readonly string[] ExposedHeaders =
        ["Location", "Retry-After", "RateLimit", "RateLimit-Policy", "Idempotent-Replayed", "Preference-Applied", "x-fal-request-id"];

    public static IHostApplicationBuilder AddBrowserCors(this IHostApplicationBuilder builder)
    {
        builder.Services.AddValidatedOptions<BrowserCorsOptions>(BrowserCorsOptions.SectionName);
        builder.Services.AddSingleton<IValidateOptions<BrowserCorsOptions>, BrowserCorsOptionsValidator>();
        builder.Services.AddCors();
        var development = builder.Environment.IsDevelopment();
        builder.Services.AddOptions<CorsOptions>().Configure<IOptions<BrowserCorsOptions>>((cors, browsers) =>
        {
            var allowed = browsers.Value.AllowedOrigins.Select(o => o.TrimEnd('/')).ToHashSet(StringComparer.OrdinalIgnoreCase);
            cors.AddPolicy(PolicyName, policy => policy
                .SetIsOriginAllowed(origin => allowed.Contains(origin) || (development && IsLoopbackHttp(origin)))
                .AllowAnyMethod()
                .WithHeaders(RequestHeaders)
                .WithExposedHeaders(ExposedHeaders)
                .SetPreflightMaxAge(TimeSpan.FromMinutes(10)));
        });
        return builder;
    }

    /// <summary>Browsers on the allowed origins may call these routes.</summary>
    public static TBuilder AllowBrowsers<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.RequireCors(PolicyName);

    internal static bool IsOrigin(string value) =>
        Uri.TryCreate(value.TrimEnd('/'), UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
        && uri.AbsolutePath == "/" && uri.Query.Length == 0 && uri.Fragment.Length == 0 && uri.UserInfo.Length == 0
        && value.TrimEnd('/').Equals(uri.GetLeftPart(UriPartial.Authority), StringComparison.OrdinalIgnoreCase);

    private static bool IsLoopbackHttp(string origin) =>
        Uri.TryCreate(origin, UriKind.Absolute, out var uri) && uri.Scheme == "http" && uri.Host is "localhost" or "127.0.0.1";
}
