using System.Diagnostics.Metrics;
using Gateway.Hosting;

namespace Gateway.Images;

/// <summary>The image store's instruments, on the gateway's meter (<c>gateway_images_*_total</c> on /metrics).</summary>
internal sealed class ImageMetrics(GatewayMetrics metrics) : IMetricSeriesAtZero
{
    private readonly Counter<long> _copies = metrics.Meter.CreateCounter<long>("gateway.images.copies", "{attempt}",
        "Copy attempts of a generation's images into the image store, by outcome: stored, retry (failed, tried again later), failed (given up: fal's URLs stay)");

    private readonly Counter<long> _swept = metrics.Meter.CreateCounter<long>("gateway.images.swept", "{image}",
        "Stored images deleted because their generation expired");

    /// <summary>The outcomes <see cref="Copy"/> is given.</summary>
    private static readonly string[] Outcomes = ["stored", "retry", "failed"];

    public void CreateAtZero()
    {
        foreach (var outcome in Outcomes)
        {
            _copies.Add(0, new KeyValuePair<string, object?>("outcome", outcome));
        }

        _swept.Add(0);
    }

    public void Copy(string outcome) => _copies.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    public void Swept(int count) => _swept.Add(count);
}
