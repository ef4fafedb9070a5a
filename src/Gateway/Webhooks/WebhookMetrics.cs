using System.Diagnostics.Metrics;

namespace Gateway.Webhooks;

/// <summary>Webhooks accepted, and rejected by reason (meter <c>Gateway.Webhooks</c>).</summary>
internal sealed class WebhookMetrics
{
    public const string MeterName = "Gateway.Webhooks";

    private readonly Counter<long> _accepted;
    private readonly Counter<long> _rejected;

    public WebhookMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _accepted = meter.CreateCounter<long>("gateway.webhooks.accepted", description: "fal webhooks accepted (duplicate=true when the generation had already ended)");
        _rejected = meter.CreateCounter<long>("gateway.webhooks.rejected", description: "fal webhooks refused, by reason");
    }

    public void Accepted(bool duplicate) => _accepted.Add(1, new KeyValuePair<string, object?>("duplicate", duplicate));

    public void Rejected(WebhookRejection reason) => _rejected.Add(1, new KeyValuePair<string, object?>("reason", reason.ToString()));
}
