using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Gateway.Hosting;

/// <summary>
/// The gateway's own instruments (meter <c>Gateway</c>), exported next to ASP.NET Core's
/// <c>http.server.request.duration</c> (requests by route and status) and HttpClient's. Every name starts with
/// <c>gateway.</c>: on <c>/metrics</c> they read <c>gateway_*</c>, with the unit and, for counters, <c>_total</c>
/// appended by the exporter (<c>gateway_fal_call_duration_seconds</c>, <c>gateway_webhooks_rejected_total</c>).
/// Client names are the only per-client label.
/// </summary>
internal sealed class GatewayMetrics : IMetricSeriesAtZero
{
    public const string MeterName = "Gateway";

    private readonly Histogram<double> _falCalls;
    private readonly Counter<long> _cacheLookups;
    private readonly UpDownCounter<long> _openStreams;
    private long _inFlight;

    public GatewayMetrics(IMeterFactory meters)
    {
        var meter = Meter = meters.Create(MeterName);
        _falCalls = meter.CreateHistogram<double>("gateway.fal.call.duration", "s", "Calls to fal by operation and outcome",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });
        _cacheLookups = meter.CreateCounter<long>("gateway.cache.lookups", "{lookup}", "Status and result lookups answered from the cache (hit) or from fal (miss)");
        _openStreams = meter.CreateUpDownCounter<long>("gateway.event_streams.open", "{stream}", "Open Server-Sent Event streams on this replica");
        meter.CreateObservableGauge("gateway.generations.in_flight", () => Volatile.Read(ref _inFlight), "{generation}", "Accepted generations that have not ended (the reconciler's schedule, shared by all replicas)");
    }

    /// <summary>The caches counted by <see cref="CacheLookup"/> (generation status, proxied status, result).</summary>
    private static readonly string[] Caches = ["status", "proxy_status", "result"];

    /// <summary>The one <c>Gateway</c> meter; features add their own instruments to it.</summary>
    public Meter Meter { get; }

    public void CreateAtZero()
    {
        foreach (var cache in Caches)
        {
            _cacheLookups.Add(0, new("cache", cache), new("outcome", "hit"));
            _cacheLookups.Add(0, new("cache", cache), new("outcome", "miss"));
        }
    }

    public void FalCall(string operation, string outcome, TimeSpan elapsed) =>
        _falCalls.Record(elapsed.TotalSeconds, new("operation", operation), new("outcome", outcome));

    public void CacheLookup(string cache, bool hit) =>
        _cacheLookups.Add(1, new("cache", cache), new("outcome", hit ? "hit" : "miss"));

    public void StreamOpened() => _openStreams.Add(1);

    public void StreamClosed() => _openStreams.Add(-1);

    public void GenerationsInFlight(long count) => Volatile.Write(ref _inFlight, count);

    /// <summary>Puts fal's request id on the current span, so traces and fal's logs line up.</summary>
    public static void TagRequestId(string requestId) => Activity.Current?.SetTag(ObservabilityExtensions.FalRequestIdTag, requestId);
}
