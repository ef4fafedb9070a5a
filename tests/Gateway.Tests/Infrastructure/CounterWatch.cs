using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Gateway.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Gateway.Tests.Infrastructure;

/// <summary>
/// One counter of the given gateways' own meters, summed by the value of one tag. Tests run many gateways in one process
/// (and /metrics is process-wide), so this listens to exactly these gateways' meter instances.
/// </summary>
public sealed class CounterWatch : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _byTag = new(StringComparer.Ordinal);

    public CounterWatch(IEnumerable<IServiceProvider> gateways, string instrument, string tag)
    {
        var meters = gateways.Select(g => g.GetRequiredService<GatewayMetrics>().Meter).ToList();
        _listener.InstrumentPublished = (published, listener) =>
        {
            if (published.Name == instrument && meters.Any(m => ReferenceEquals(m, published.Meter)))
            {
                listener.EnableMeasurementEvents(published);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var pair in tags)
            {
                if (pair.Key == tag)
                {
                    _byTag.AddOrUpdate(pair.Value?.ToString() ?? "", value, (_, sum) => sum + value);
                }
            }
        });
        _listener.Start();
    }

    public long this[string tagValue] => _byTag.GetValueOrDefault(tagValue);

    public override string ToString() => string.Join(", ", _byTag.Select(p => $"{p.Key}={p.Value}"));

    public void Dispose() => _listener.Dispose();
}
