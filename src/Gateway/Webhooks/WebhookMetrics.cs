using System.Diagnostics.Metrics;
using Gateway.Hosting;

namespace Gateway.Webhooks;

/// <summary>fal's webhooks, on the gateway's meter (<c>gateway_webhooks_accepted_total</c>, <c>gateway_webhooks_rejected_total</c>).</summary>
internal sealed class WebhookMetrics(GatewayMetrics metrics) : IMetricSeriesAtZero
{
    private readonly Counter<long> _accepted = metrics.Meter.CreateCounter<long>("gateway.webhooks.accepted", "{webhook}",
        "fal webhooks accepted (duplicate=true when the generation had already ended)");

    private readonly Counter<long> _rejected = metrics.Meter.CreateCounter<long>("gateway.webhooks.rejected", "{webhook}",
        "fal webhooks refused, by reason");

    public void CreateAtZero()
    {
        _accepted.Add(0, new KeyValuePair<string, object?>("duplicate", false));
        _accepted.Add(0, new KeyValuePair<string, object?>("duplicate", true));
        foreach (var reason in Enum.GetValues<WebhookRejection>().Where(r => r != WebhookRejection.None))
        {
            _rejected.Add(0, new KeyValuePair<string, object?>("reason", reason.ToString()));
        }
    }

    public void Accepted(bool duplicate) => _accepted.Add(1, new KeyValuePair<string, object?>("duplicate", duplicate));

    public void Rejected(string reason) => _rejected.Add(1, new KeyValuePair<string, object?>("reason", reason));
}
