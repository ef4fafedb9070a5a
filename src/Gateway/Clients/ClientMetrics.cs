using System.Diagnostics.Metrics;
using Gateway.Hosting;

namespace Gateway.Clients;

/// <summary>
/// Per-client counters on the "Gateway" meter, for the operations work to export. The client name is the
/// only per-client tag: a bounded set (configured clients), never a key or a prompt.
/// </summary>
internal sealed class ClientMetrics
{
    private readonly Counter<long> _submits;
    private readonly Counter<long> _images;
    private readonly Counter<double> _spend;
    private readonly Counter<long> _refusals;

    public ClientMetrics(GatewayMetrics gateway)
    {
        var meter = gateway.Meter;
        _submits = meter.CreateCounter<long>("gateway.client.submits", "{submit}", "Submits accepted and sent to fal");
        _images = meter.CreateCounter<long>("gateway.client.images", "{image}", "Images requested from fal (num_images)");
        _spend = meter.CreateCounter<double>("gateway.client.spend", "USD", "Estimated spend (images x Limits:PricePerImageUsd)");
        _refusals = meter.CreateCounter<long>("gateway.client.limit_refusals", "{submit}", "Submits refused by a client limit");
    }

    public void Accepted(string client, int images, decimal spendUsd)
    {
        var tag = new KeyValuePair<string, object?>("client", client);
        _submits.Add(1, tag);
        _images.Add(images, tag);
        _spend.Add((double)spendUsd, tag);
    }

    public void Refused(string client, LimitKind exceeded) =>
        _refusals.Add(1, new KeyValuePair<string, object?>("client", client), new KeyValuePair<string, object?>("limit", exceeded.ToString()));
}
