using System.Diagnostics.Metrics;
using OpenTelemetry;
using OpenTelemetry.Instrumentation.AspNetCore;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Gateway.Hosting;

/// <summary>
/// Metrics on <c>/metrics</c> (Prometheus, named by OpenTelemetry's rules) and traces, both through OpenTelemetry, and
/// over OTLP when the standard <c>OTEL_EXPORTER_OTLP_*</c> variables say where: the SDK reads them (endpoint,
/// protocol, headers, timeouts, <c>OTEL_SERVICE_NAME</c>, <c>OTEL_RESOURCE_ATTRIBUTES</c>, <c>OTEL_BSP_*</c>,
/// <c>OTEL_METRIC_EXPORT_INTERVAL</c>), the gateway only decides whether a signal has somewhere to go.
/// </summary>
internal static class ObservabilityExtensions
{
    /// <summary><c>service.name</c> unless <c>OTEL_SERVICE_NAME</c> or <c>OTEL_RESOURCE_ATTRIBUTES</c> names another.</summary>
    public const string ServiceName = "mai-image-gateway";

    /// <summary>The span attribute that joins the gateway's traces to fal's logs.</summary>
    public const string FalRequestIdTag = "fal.request_id";

    /// <summary>fal names the job its answer is about in this header (docs/fal-upstream.md).</summary>
    private const string FalRequestIdHeader = "x-fal-request-id";

    /// <summary>The job a call to fal is about, when the caller knows it before fal answers (status, result, cancel).</summary>
    public static readonly HttpRequestOptionsKey<string> FalRequestId = new(FalRequestIdTag);

    /// <summary>The meters exported: ours, requests, Kestrel, outgoing HTTP (fal) and the runtime; not every internal one.</summary>
    private static readonly string[] Meters =
        [GatewayMetrics.MeterName, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "System.Net.Http", "System.Runtime"];

    /// <summary>Any of these set turns OTLP export on; the SDK then reads them (and the rest of <c>OTEL_EXPORTER_OTLP_*</c>) itself.</summary>
    private static readonly string[] OtlpEndpoints =
        ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"];

    public static IHostApplicationBuilder AddGatewayObservability(this IHostApplicationBuilder builder)
    {
        builder.Services.AddMetrics();
        builder.Services.AddMetricsAtZero<GatewayMetrics>();

        builder.Services.AddOptions<AspNetCoreTraceInstrumentationOptions>().Configure<SecretQueryParameters>((options, secrets) =>
            options.EnrichWithHttpRequest = (activity, _) =>
            {
                // Redacted here whatever the instrumentation's own query redaction is set to.
                if (activity.GetTagItem("url.query") is string { Length: > 0 } query)
                {
                    activity.SetTag("url.query", secrets.Redact(query));
                }
            });
        var otlp = builder.ExportsOtlp();
        ThrowIfEndpointInvalid(builder.Configuration);
        var telemetry = builder.Services.AddOpenTelemetry()
            // The environment detector again after the default name, so that the operator's variables win over it.
            .ConfigureResource(resource => resource
                .AddService(ServiceName, serviceVersion: typeof(ObservabilityExtensions).Assembly.GetName().Version?.ToString())
                .AddEnvironmentVariableDetector())
            .WithMetrics(metrics => metrics.AddMeter(Meters).AddPrometheusExporter())
            .WithTracing(traces =>
            {
                // Scrapes and probes come every few seconds from the cluster, not from users: no spans for them.
                traces.AddAspNetCoreInstrumentation(options => options.Filter = context => !IsOperatorRoute(context.Request.Path))
                    .AddHttpClientInstrumentation(options =>
                    {
                        options.EnrichWithHttpRequestMessage = (activity, request) =>
                        {
                            if (request.Options.TryGetValue(FalRequestId, out var requestId))
                            {
                                activity.SetTag(FalRequestIdTag, requestId);
                            }
                        };
                        options.EnrichWithHttpResponseMessage = (activity, response) =>
                        {
                            if (response.Headers.TryGetValues(FalRequestIdHeader, out var values) && values.FirstOrDefault() is { Length: > 0 } requestId)
                            {
                                activity.SetTag(FalRequestIdTag, requestId);
                            }
                        };
                    });
            });
        builder.Services.ConfigureOpenTelemetryMeterProvider((services, metrics) =>
            metrics.AddView(Streams(services.GetRequiredService<IMeterFactory>())));

        // The SDK's own OTLP set-up for every signal: the one that reads the per-signal variables too (AddOtlpExporter
        // reads only OTEL_EXPORTER_OTLP_ENDPOINT). Only when the operator named an endpoint: the default one
        // (localhost:4317) would fail every few seconds in a pod without a collector beside it.
        if (otlp)
        {
            telemetry.UseOtlpExporter();
        }

        // After AddOpenTelemetry's hosted service, which starts the meter provider: a measurement before it is lost.
        builder.Services.AddHostedService<MetricSeriesAtStart>();

        return builder;
    }

    /// <summary>True when the operator named an OTLP endpoint: only then do spans go anywhere (features add costly ones only then).</summary>
    public static bool ExportsOtlp(this IHostApplicationBuilder builder) =>
        OtlpEndpoints.Any(name => !string.IsNullOrWhiteSpace(builder.Configuration[name]));

    /// <summary><c>/metrics</c> in Prometheus text format; only the webhook route is exposed publicly (see deploy/).</summary>
    public static WebApplication MapGatewayMetrics(this WebApplication app)
    {
        app.MapPrometheusScrapingEndpoint("/metrics").ExcludeFromDescription();
        return app;
    }

    /// <summary>The SDK ignores an endpoint it cannot parse and exports nothing, silently: stop the start instead, naming it.</summary>
    private static void ThrowIfEndpointInvalid(IConfiguration configuration)
    {
        var failures = OtlpEndpoints
            .Where(name => configuration[name] is { } value && !string.IsNullOrWhiteSpace(value)
                && !(Uri.TryCreate(value, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)))
            .Select(name => $"{name} must be an absolute http:// or https:// URL, such as http://otel-collector:4317.")
            .ToList();
        if (failures.Count > 0)
        {
            throw new Microsoft.Extensions.Options.OptionsValidationException("OTEL_EXPORTER_OTLP", typeof(ObservabilityExtensions), failures);
        }
    }

    private static bool IsOperatorRoute(PathString path) =>
        path.StartsWithSegments("/health") || path.StartsWithSegments("/metrics");

    /// <summary>
    /// .NET's System.Runtime meter names three gauges <c>*.count</c>, which Prometheus reserves for a histogram's or a
    /// summary's count (promtool flags <c>dotnet_assembly_count</c>): exported under gauge names instead.
    /// </summary>
    private static readonly Dictionary<string, string> RuntimeGaugeNames = new(StringComparer.Ordinal)
    {
        ["dotnet.assembly.count"] = "dotnet.assemblies.loaded",
        ["dotnet.process.cpu.count"] = "dotnet.process.cpus",
        ["dotnet.timer.count"] = "dotnet.timers.active",
    };

    /// <summary>
    /// Meters whose labels are a small fixed set (runtime, Kestrel, outgoing HTTP): their streams keep room for
    /// <see cref="FixedLabelCardinalityLimit"/> label sets rather than the SDK's 2,000. The SDK allocates a stream's points
    /// up front: 2,000 points were 144 KB a stream on the large-object heap, 6.2 MB for the gateway's 43 streams (a heap
    /// dump under load, issue 13). Requests (route × status) and the gateway's own (client names) keep the default.
    /// Label sets past a limit are summed into the SDK's overflow series, not dropped.
    /// </summary>
    private static readonly HashSet<string> FixedLabelMeters =
        new(["System.Runtime", "Microsoft.AspNetCore.Server.Kestrel", "System.Net.Http"], StringComparer.Ordinal);

    internal const int FixedLabelCardinalityLimit = 200;

    /// <summary>
    /// One view for every instrument (several matching views would export an instrument twice). A meter made by another
    /// host's <see cref="IMeterFactory"/> (tests run several gateways in one process) is not this host's: left in, its
    /// instruments would take the names of this host's own and hide them. The runtime's <c>*.count</c> gauges are renamed.
    /// </summary>
    internal static Func<Instrument, MetricStreamConfiguration?> Streams(IMeterFactory factory) => instrument =>
    {
        if (instrument.Meter.Scope is IMeterFactory other && other != factory)
        {
            return MetricStreamConfiguration.Drop;
        }

        if (!FixedLabelMeters.Contains(instrument.Meter.Name))
        {
            return null;
        }

        var stream = new MetricStreamConfiguration { CardinalityLimit = FixedLabelCardinalityLimit };
        if (instrument.Meter.Name == "System.Runtime" && RuntimeGaugeNames.TryGetValue(instrument.Name, out var name))
        {
            stream.Name = name;
        }

        return stream;
    };
}
