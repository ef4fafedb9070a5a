using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Gateway.Hosting;
using Microsoft.Extensions.Options;

namespace Gateway.Clients;

/// <summary>
/// Per-client instruments on the "Gateway" meter. The client name is the only per-client tag: a bounded set
/// (configured clients), never a key or a prompt. On <c>/metrics</c>: <c>gateway_client_submits_total</c>,
/// <c>gateway_client_images_total</c>, <c>gateway_client_spend_usd_total</c>, <c>gateway_client_limit_refusals_total</c>
/// and <c>gateway_client_limit_usage_ratio</c>.
/// </summary>
internal sealed class ClientMetrics : IMetricSeriesAtZero, IDisposable
{
    private readonly Counter<long> _submits;
    private readonly Counter<long> _images;
    private readonly Counter<double> _spend;
    private readonly Counter<long> _refusals;

    /// <summary>The share of each daily limit a client had used when this replica last counted for it, by UTC day.</summary>
    private readonly ConcurrentDictionary<(string Client, string Limit), (string Day, double Ratio)> _usage = new();
    private readonly TimeProvider _time;

    private readonly IOptionsMonitor<ClientsOptions> _clients;
    private IDisposable? _reloads;

    public ClientMetrics(GatewayMetrics gateway, TimeProvider time, IOptionsMonitor<ClientsOptions> clients)
    {
        _time = time;
        _clients = clients;
        var meter = gateway.Meter;
        _submits = meter.CreateCounter<long>("gateway.client.submits", "{submit}", "Submits accepted and sent to fal");
        _images = meter.CreateCounter<long>("gateway.client.images", "{image}", "Images requested from fal (num_images)");
        _spend = meter.CreateCounter<double>("gateway.client.spend", "usd", "Estimated spend in US dollars (images x Limits:PricePerImageUsd)");
        _refusals = meter.CreateCounter<long>("gateway.client.limit_refusals", "{submit}", "Submits refused by a client limit");
        // "_ratio" in the name: the exporter does not add it for the unit "1" (a test scrapes for the name the alerts use).
        meter.CreateObservableGauge("gateway.client.limit.usage_ratio", ObserveUsage, "1",
            "Share of a daily limit (limit=ImagesPerDay or DailyBudget) the client has used today (UTC), as last counted by this replica");
    }

    /// <summary>
    /// The clients configured at start, each limit on its own (a refusal for two at once is one more series), and those
    /// added later (a key file in Gateway__SecretsPath) as they are added.
    /// </summary>
    public void CreateAtZero()
    {
        CreateAtZero(_clients.CurrentValue);
        _reloads ??= _clients.OnChange(CreateAtZero);
    }

    public void Dispose() => _reloads?.Dispose();

    private void CreateAtZero(ClientsOptions options)
    {
        foreach (var client in options.Clients.Keys)
        {
            var tag = new KeyValuePair<string, object?>("client", client);
            _submits.Add(0, tag);
            _images.Add(0, tag);
            _spend.Add(0, tag);
            foreach (var limit in Enum.GetValues<LimitKind>().Where(l => l != LimitKind.None))
            {
                _refusals.Add(0, tag, new KeyValuePair<string, object?>("limit", limit.ToString()));
            }
        }
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

    /// <summary>Today's counts for a client, exact across replicas (from the limit store), against its daily limits.</summary>
    public void Counted(string client, string day, ClientPolicy policy, LimitCounts counts)
    {
        if (policy.ImagesPerDay > 0)
        {
            _usage[(client, nameof(LimitKind.ImagesPerDay))] = (day, (double)counts.DayImages / policy.ImagesPerDay);
        }

        if (policy.DailyBudgetMicros is { } budget && budget > 0)
        {
            _usage[(client, nameof(LimitKind.DailyBudget))] = (day, (double)counts.DaySpendMicros / budget);
        }
    }

    private IEnumerable<Measurement<double>> ObserveUsage()
    {
        // A day's count says nothing once the day is over: the limits start again from zero.
        var today = LimitWindows.At(new Owner("", null), _time.GetUtcNow()).Day;
        foreach (var ((client, limit), (day, ratio)) in _usage)
        {
            yield return new Measurement<double>(day == today ? ratio : 0,
                new KeyValuePair<string, object?>("client", client), new KeyValuePair<string, object?>("limit", limit));
        }
    }
}
