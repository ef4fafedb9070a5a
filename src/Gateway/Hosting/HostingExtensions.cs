using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.FileProviders.Physical;
using Microsoft.Extensions.Options;
using Serilog;
using Serilog.Formatting.Compact;

namespace Gateway.Hosting;

internal static class HostingExtensions
{
    /// <summary>Logging, JSON, problem details, validation, health and OpenAPI: what every feature leans on.</summary>
    public static IHostApplicationBuilder AddGatewayHosting(this IHostApplicationBuilder builder)
    {
        builder.AddSecretFiles();
        builder.Services.AddValidatedOptions<SecretFilesOptions>(SecretFilesOptions.SectionName);
        builder.Services.AddValidatedOptions<GatewayOptions>(GatewayOptions.SectionName);
        builder.Services.AddSingleton(TimeProvider.System);

        // Levels, overrides and extra sinks come from the "Serilog" section; the console speaks JSON
        // everywhere but Development, where people read it.
        var development = builder.Environment.IsDevelopment();
        SerilogLevels.ThrowIfInvalid(builder.Configuration);
        var consoleLevel = builder.Configuration.GetValue("Serilog:ConsoleMinimumLevel", Serilog.Events.LogEventLevel.Verbose);
        // preserveStaticLogger: each host logs through its own logger, never the process-wide Log.Logger, so
        // several gateways in one process (the tests run replicas side by side) never write into each other's sinks.
        builder.Services.AddSingleton<SecretQueryParameters>();
        builder.Services.AddSingleton<Serilog.Core.ILogEventEnricher>(services => services.GetRequiredService<SecretQueryParameters>());
        builder.Services.AddSerilog((services, logger) =>
        {
            logger.ReadFrom.Configuration(builder.Configuration).ReadFrom.Services(services).Enrich.FromLogContext();
            // The host logs a failed start with its stack before the runner says which setting is bad, in one line.
            logger.Filter.ByExcluding(logEvent => logEvent.Exception is { } e && ConfigurationFailures.Of(e).Any());
            // The console is written by one background thread, not on every request's thread. A full queue (10,000
            // events) makes writers wait rather than drop lines: every request keeps its line. In production the lines
            // leave through one buffer, written whenever the queue runs empty (BufferedConsoleSink); in Development
            // Serilog's console sink writes them for people to read.
            if (development)
            {
                logger.WriteTo.Async(console => console.Console(consoleLevel,
                    "[{Timestamp:HH:mm:ss} {Level:u3}] {SourceContext}: {Message:lj}{NewLine}{Exception}"), blockWhenFull: true);
            }
            else
            {
                logger.WriteTo.Sink(new BufferedConsoleSink(new RenderedCompactJsonFormatter(), Console.OpenStandardOutput(), consoleLevel));
            }
        }, preserveStaticLogger: true); // each host logs through its own logger, never a process-wide one
        var serilogFactory = builder.Services.Last(d => d.ServiceType == typeof(ILoggerFactory));
        builder.Services.Remove(serilogFactory);
        builder.Services.AddSingleton<ILoggerFactory>(services => new CachingLoggerFactory((ILoggerFactory)serilogFactory.ImplementationFactory!(services)));

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
        });
        // No encoder: System.Text.Json's default escaping (HTML-sensitive characters and non-ASCII as \u escapes; the same
        // JSON values). The framework sets the relaxed encoder, and any encoder at all keeps System.Text.Json off the
        // source generator's fast path: every answer took the metadata-driven writer, a WriteStack per answer (issue 13).
        builder.Services.PostConfigure<Microsoft.AspNetCore.Http.Json.JsonOptions>(options => options.SerializerOptions.Encoder = null);
        builder.Services.Configure<RouteHandlerOptions>(options => options.ThrowOnBadRequest = true);
        builder.Services.AddSingleton<IConfigureOptions<KestrelServerOptions>, KestrelLimits>();

        builder.Services.AddValidation();
        builder.Services.AddSingleton<ValidationFieldNames>();
        builder.Services.AddProblemDetails();
        builder.Services.AddSingleton<IConfigureOptions<ProblemDetailsOptions>, GatewayProblemDetails>();
        builder.Services.AddSingleton<IProblemDetailsWriter, AnyAcceptProblemWriter>(); // after the framework's: used where it declines
        builder.Services.AddExceptionHandler<GatewayExceptionHandler>();

        builder.Services.AddSingleton<GracefulShutdown>();
        builder.Services.AddHostedService(services => services.GetRequiredService<GracefulShutdown>());
        builder.Services.AddHostedService<IdleMemoryTrimmer>();
        builder.Services.AddHealthChecks().AddCheck<GracefulShutdown>("draining", tags: ["ready"]);
        builder.Services.AddOptions<HostOptions>().Configure<IOptions<GatewayOptions>>((host, gateway) => host.ShutdownTimeout = gateway.Value.ShutdownTimeout);
        builder.AddGatewayObservability();
        builder.AddBrowserCors();
        builder.AddGatewayOpenApi();
        return builder;
    }

    /// <summary>
    /// <c>Gateway__SecretsPath</c>: a directory with one setting per file, the file name being the setting's name
    /// (<c>Clients__acme__KeySha256</c>), as a Kubernetes Secret volume lays it out. Read first, so every feature sees
    /// it, over the environment; watched, so that key files added or removed count within seconds (client keys are
    /// read through IOptionsMonitor). A directory that does not exist is refused by <see cref="SecretFilesOptions"/>.
    /// </summary>
    private static void AddSecretFiles(this IHostApplicationBuilder builder)
    {
        var path = builder.Configuration[$"{SecretFilesOptions.SectionName}:{nameof(SecretFilesOptions.SecretsPath)}"];
        if (string.IsNullOrWhiteSpace(path) || !Directory.Exists(path))
        {
            return;
        }

        builder.Configuration.AddKeyPerFile(source =>
        {
            // No exclusion filters: a Secret volume changes a value by swapping its "..data" link, and the default
            // filters (dot-prefixed names excluded) would not report that. The "..*" entries are not settings.
            source.FileProvider = new PhysicalFileProvider(Path.GetFullPath(path), ExclusionFilters.None);
            source.IgnoreCondition = name => name.StartsWith('.');
            source.ReloadOnChange = true;
        });
    }

    public static WebApplication UseGatewayHosting(this WebApplication app)
    {
        app.UseSerilogRequestLogging(options =>
        {
            options.Logger = app.Services.GetRequiredService<Serilog.ILogger>();
            options.IncludeQueryInRequestPath = false; // a query may carry a credential (a link's ticket)
            options.GetLevel = (context, _, exception) =>
                exception is not null || context.Response.StatusCode >= 500 ? Serilog.Events.LogEventLevel.Error
                : context.Request.Path.StartsWithSegments("/health") ? Serilog.Events.LogEventLevel.Verbose
                : Serilog.Events.LogEventLevel.Information;
        });

        // Inside request logging, so the logged status is the one the client got.
        app.UseExceptionHandler();
        app.UseStatusCodePages();

        // Before authentication: a preflight carries no credentials and is answered here.
        app.UseCors();
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
