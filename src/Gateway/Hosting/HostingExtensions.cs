using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Serilog;
using Serilog.Formatting.Compact;

namespace Gateway.Hosting;

internal static class HostingExtensions
{
    /// <summary>Logging, JSON, problem details, validation, health and OpenAPI: what every feature leans on.</summary>
    public static IHostApplicationBuilder AddGatewayHosting(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<GatewayOptions>()
            .BindConfiguration(GatewayOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddSingleton(TimeProvider.System);

        // Levels, overrides and extra sinks come from the "Serilog" section; the console speaks JSON
        // everywhere but Development, where people read it.
        var development = builder.Environment.IsDevelopment();
        var consoleLevel = builder.Configuration.GetValue("Serilog:ConsoleMinimumLevel", Serilog.Events.LogEventLevel.Verbose);
        // preserveStaticLogger: each host logs through its own logger, never the process-wide Log.Logger, so
        // several gateways in one process (the tests run replicas side by side) never write into each other's sinks.
        builder.Services.AddSerilog((services, logger) =>
        {
            logger.ReadFrom.Configuration(builder.Configuration).ReadFrom.Services(services).Enrich.FromLogContext();
            if (development)
            {
                logger.WriteTo.Console(consoleLevel, "[{Timestamp:HH:mm:ss} {Level:u3}] {SourceContext}: {Message:lj}{NewLine}{Exception}");
            }
            else
            {
                logger.WriteTo.Console(new RenderedCompactJsonFormatter(), consoleLevel);
            }
        }, preserveStaticLogger: true); // each host logs through its own logger, never a process-wide one

        // Every factory client, also those a feature registers later, logs through the header-free logger and no
        // other: no request header (the FAL key is one) can reach a log at any level.
        builder.Services.AddSingleton<HeaderFreeHttpClientLogger>();
        builder.Services.ConfigureHttpClientDefaults(http => http.RemoveAllLoggers().AddLogger<HeaderFreeHttpClientLogger>());

        // The contract, not the Web defaults (which match names in any case and read "4" as 4): names match
        // exactly, numbers are JSON numbers, and a property sent twice is refused rather than the last one winning.
        builder.Services.ConfigureHttpJsonOptions(options =>
        {
            options.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            options.SerializerOptions.PropertyNameCaseInsensitive = false;
            options.SerializerOptions.NumberHandling = JsonNumberHandling.Strict;
            options.SerializerOptions.AllowDuplicateProperties = false;
            options.SerializerOptions.TypeInfoResolverChain.Insert(0, GatewayJsonContext.Default);
        });
        builder.Services.Configure<RouteHandlerOptions>(options => options.ThrowOnBadRequest = true);
        builder.Services.AddSingleton<IConfigureOptions<KestrelServerOptions>, KestrelLimits>();

        builder.Services.AddValidation();
        builder.Services.AddProblemDetails(options => options.CustomizeProblemDetails = context =>
        {
            var problem = context.ProblemDetails;
            problem.Extensions.Remove("traceId");
            problem.Extensions["trace_id"] = Activity.Current?.TraceId.ToString() ?? context.HttpContext.TraceIdentifier;
            if (problem is HttpValidationProblemDetails validation)
            {
                var named = ValidationFieldNames.ToJsonNames(validation.Errors);
                validation.Errors.Clear();
                foreach (var (field, messages) in named)
                {
                    validation.Errors[field] = messages;
                }
            }

            if (problem.Status == StatusCodes.Status413PayloadTooLarge)
            {
                problem.Detail ??= "The request body is larger than the gateway accepts (Gateway__MaxRequestBodyBytes).";
                problem.Extensions.TryAdd("errors", new Dictionary<string, string[]> { ["body"] = [problem.Detail] });
                problem.Type = ProblemTypes.For("body-too-large");
            }

            if (problem.Status == StatusCodes.Status415UnsupportedMediaType)
            {
                problem.Detail ??= "Send the body as JSON with Content-Type: application/json.";
                problem.Extensions.TryAdd("errors", new Dictionary<string, string[]> { ["Content-Type"] = [problem.Detail] });
                problem.Type = ProblemTypes.For("unsupported-media-type");
            }

            if (problem is HttpValidationProblemDetails && (problem.Type is null || problem.Type.StartsWith("https://tools.ietf.org", StringComparison.Ordinal)))
            {
                problem.Type = ProblemTypes.For("validation");
                problem.Title = "The request is not valid";
                problem.Detail ??= "One or more fields are invalid; see errors.";
            }
            else if (problem.Type is null || problem.Type.StartsWith("https://tools.ietf.org", StringComparison.Ordinal))
            {
                problem.Type = ProblemTypes.For(problem.Status switch
                {
                    StatusCodes.Status401Unauthorized => "unauthorized",
                    StatusCodes.Status404NotFound => "not-found",
                    StatusCodes.Status405MethodNotAllowed => "method-not-allowed",
                    _ => "http-" + problem.Status,
                });
            }
        });
        builder.Services.AddExceptionHandler<GatewayExceptionHandler>();

        builder.Services.AddSingleton<GracefulShutdown>();
        builder.Services.AddHostedService(services => services.GetRequiredService<GracefulShutdown>());
        builder.Services.AddHealthChecks().AddCheck<GracefulShutdown>("draining", tags: ["ready"]);
        builder.Services.AddOptions<HostOptions>().Configure<IOptions<GatewayOptions>>((host, gateway) => host.ShutdownTimeout = gateway.Value.ShutdownTimeout);
        builder.AddGatewayObservability();
        builder.AddGatewayOpenApi();
        return builder;
    }

    public static WebApplication UseGatewayHosting(this WebApplication app)
    {
        app.UseSerilogRequestLogging(options =>
        {
            options.Logger = app.Services.GetRequiredService<Serilog.ILogger>();
            options.GetLevel = (context, _, exception) =>
                exception is not null || context.Response.StatusCode >= 500 ? Serilog.Events.LogEventLevel.Error
                : context.Request.Path.StartsWithSegments("/health") ? Serilog.Events.LogEventLevel.Verbose
                : Serilog.Events.LogEventLevel.Information;
        });

        // Inside request logging, so the logged status is the one the client got.
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        return app;
    }

    public static WebApplication MapGatewayHosting(this WebApplication app)
    {
        app.MapHealthChecks("/health/live", new() { Predicate = _ => false }).ExcludeFromDescription();
        app.MapHealthChecks("/health/ready", new() { Predicate = check => check.Tags.Contains("ready") }).ExcludeFromDescription();
        app.MapGatewayOpenApi();
        app.MapGatewayMetrics();
        return app;
    }

    private sealed class KestrelLimits(IOptions<GatewayOptions> options) : IConfigureOptions<KestrelServerOptions>
    {
        public void Configure(KestrelServerOptions kestrel)
        {
            kestrel.Limits.MaxRequestBodySize = options.Value.MaxRequestBodyBytes;
            kestrel.AddServerHeader = false;
        }
    }
}
