using OpenTelemetry.Instrumentation.AspNetCore;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Prometheus;

namespace Gateway.Hosting;

/// <summary>Prometheus metrics on <c>/metrics</c> and OpenTelemetry traces (OTLP when configured).</summary>
internal static class ObservabilityExtensions
{
    private static int _adapterConfigured;

    public static IHostApplicationBuilder AddGatewayObservability(this IHostApplicationBuilder builder)
    {
        builder.Services.AddMetrics();
        builder.Services.AddSingleton<GatewayMetrics>();

        // Export the meters that describe the gateway (ours, requests, Kestrel, fal calls, the runtime), not
        // every internal one; and start listening now, not at the first scrape, so nothing is missed.
        // prometheus-net's registry is process-wide: configure its adapter once, not once per host.
        if (Interlocked.Exchange(ref _adapterConfigured, 1) == 0)
        {
            Metrics.ConfigureMeterAdapter(adapter => adapter.InstrumentFilterPredicate = instrument =>
                instrument.Meter.Name is GatewayMetrics.MeterName or "Microsoft.AspNetCore.Hosting" or "Microsoft.AspNetCore.Server.Kestrel"
                    or "System.Net.Http" or "System.Runtime");
        }

        // traceparent reaches fal through the HttpClient instrumentation; spans leave only when an
        // OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT, the standard variable).
        builder.Services.AddOptions<AspNetCoreTraceInstrumentationOptions>().Configure<SecretQueryParameters>((options, secrets) =>
            options.EnrichWithHttpRequest = (activity, _) =>
            {
                // Redacted here whatever the instrumentation's own query redaction is set to.
                if (activity.GetTagItem("url.query") is string { Length: > 0 } query)
                {
                    activity.SetTag("url.query", secrets.Redact(query));
                }
            });
        var tracing = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("mai-image-gateway"))
            .WithTracing(traces =>
            {
                traces.AddAspNetCoreInstrumentation(options => options.Filter = context => !context.Request.Path.StartsWithSegments("/health"))
                    .AddHttpClientInstrumentation();
                if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
                {
                    traces.AddOtlpExporter();
                }
            });
        return builder;
    }

    /// <summary><c>/metrics</c> in Prometheus text format; only the webhook route is exposed publicly (see deploy/).</summary>
    public static WebApplication MapGatewayMetrics(this WebApplication app)
    {
        app.MapMetrics("/metrics").ExcludeFromDescription();

        // prometheus-net connects its meter adapter on the first collection; do one now, so the
        // requests and fal calls before the first scrape are counted too.
        app.Lifetime.ApplicationStarted.Register(() => _ = Metrics.DefaultRegistry.CollectAndExportAsTextAsync(Stream.Null));
        return app;
    }
}
