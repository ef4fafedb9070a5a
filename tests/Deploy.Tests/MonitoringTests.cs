using System.Text.Json;
using System.Text.Json.Nodes;

namespace Deploy.Tests;

/// <summary>
/// deploy/components/monitoring as the overlays render it: a ServiceMonitor that scrapes the gateway, alert rules
/// Prometheus accepts, and a Grafana dashboard. (That their metric names are the ones the gateway exports is
/// checked against a real scrape in Gateway.Tests, MetricsExpositionTests.)
/// </summary>
public sealed class MonitoringTests
{
    private const string DashboardPath = "deploy/components/monitoring/grafana-dashboard.json";

    public static TheoryData<string> MonitoredOverlays => [.. Monitored()];

    [Fact]
    public void Production_RendersTheMonitoringComponent()
    {
        Assert.Contains("production", Monitored());
    }

    private static IEnumerable<string> Monitored() =>
        Kustomize.OverlayNames.Where(o => RenderedOverlay.Of(o).OfKind("ServiceMonitor").Any());

    [Theory]
    [MemberData(nameof(MonitoredOverlays))]
    public void ServiceMonitor_ScrapesMetricsOnTheServicesHttpPort(string overlay)
    {
        var o = RenderedOverlay.Of(overlay);
        var monitor = o.Single("ServiceMonitor");
        var service = o.Single("Service");
        var serviceLabels = service["metadata"]!["labels"].StringMap().ToDictionary();
        foreach (var (key, value) in monitor["spec"]!["selector"]!["matchLabels"].StringMap())
        {
            Assert.True(serviceLabels.GetValueOrDefault(key) == value, $"{overlay}: the ServiceMonitor selects {key}={value}, which the Service is not labelled with.");
        }

        var endpoint = Assert.Single(monitor["spec"]!["endpoints"].Objects());
        Assert.Equal("/metrics", endpoint["path"].Text());
        Assert.Contains(service["spec"]!["ports"].Objects(), p => p["name"].Text() == endpoint["port"].Text());
        Assert.Equal(o.Deployment["metadata"]!["namespace"].Text(), monitor["metadata"]!["namespace"].Text());
    }

    [Theory]
    [MemberData(nameof(MonitoredOverlays))]
    public void AlertRules_PassPromtoolCheckRules(string overlay)
    {
        var rules = RenderedOverlay.Of(overlay).Single("PrometheusRule")["spec"]!;
        var file = Path.Combine(Path.GetTempPath(), $"mai-image-gateway-rules-{Guid.NewGuid():N}.json"); // JSON is YAML
        File.WriteAllText(file, rules.ToJsonString());
        try
        {
            var (exitCode, output) = Promtool.Run("check", "rules", file);
            Assert.True(exitCode == 0, $"{overlay}: promtool check rules failed ({exitCode}):\n{output}");
            Assert.Contains("SUCCESS", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>The alerts the issue names: fal errors or 5xx, webhook rejections, reconciler backlog, a client near its limit, Redis; and image copies given up (issue 15).</summary>
    [Theory]
    [MemberData(nameof(MonitoredOverlays))]
    public void AlertRules_CoverWhatOperatorsAreWokenFor(string overlay)
    {
        var alerts = RenderedOverlay.Of(overlay).Single("PrometheusRule")["spec"]!["groups"].Objects()
            .SelectMany(g => g["rules"].Objects())
            .ToDictionary(r => r["alert"].Text() ?? "", r => r["expr"].Text() ?? "");
        foreach (var (metric, what) in new[]
        {
            ("gateway_fal_call_duration_seconds_count", "calls to fal failing"),
            ("http_server_request_duration_seconds_count", "5xx answers"),
            ("gateway_webhooks_rejected_total", "webhook rejections"),
            ("gateway_generations_in_flight", "the reconciler's backlog"),
            ("gateway_client_limit_usage_ratio", "a client near its limits"),
            ("gateway_redis_available", "Redis unreachable"),
            ("gateway_images_copies_total", "images that could not be copied into the image store"),
        })
        {
            Assert.True(alerts.Values.Any(e => e.Contains(metric, StringComparison.Ordinal)), $"{overlay}: no alert on {what} ({metric}).");
        }

        Assert.All(alerts, a => Assert.True(a.Value.Contains("job=\"mai-image-gateway\"", StringComparison.Ordinal),
            $"{overlay}: alert {a.Key} does not select job=\"mai-image-gateway\" and would also count other services' series."));
    }

    [Fact]
    public void Dashboard_IsGrafanaJson_WithAPrometheusQueryInEveryPanel()
    {
        var dashboard = JsonNode.Parse(Repo.Read(DashboardPath), documentOptions: new JsonDocumentOptions { AllowTrailingCommas = false })!;
        Assert.False(string.IsNullOrEmpty(dashboard["uid"].Text()), $"{DashboardPath} has no uid (Grafana would duplicate it on every load).");
        var panels = dashboard["panels"].Objects().ToList();
        Assert.True(panels.Count >= 6, $"{DashboardPath} has {panels.Count} panels.");
        foreach (var panel in panels)
        {
            var targets = panel["targets"].Objects().ToList();
            Assert.True(targets.Count > 0, $"panel '{panel["title"].Text()}' has no query.");
            Assert.All(targets, t => Assert.False(string.IsNullOrWhiteSpace(t["expr"].Text()), $"panel '{panel["title"].Text()}' has an empty query."));
            Assert.Equal("${datasource}", panel["datasource"]?["uid"].Text());
        }

        Assert.Contains(dashboard["templating"]!["list"].Objects(), v => v["name"].Text() == "datasource" && v["type"].Text() == "datasource");
    }

    [Theory]
    [MemberData(nameof(MonitoredOverlays))]
    public void Dashboard_ShipsAsAConfigMapForGrafanasSidecar(string overlay)
    {
        var configMap = RenderedOverlay.Of(overlay).OfKind("ConfigMap").Single(c => c["metadata"]!["name"].Text() == "mai-image-gateway-dashboard");
        Assert.Equal("1", configMap["metadata"]!["labels"]?["grafana_dashboard"].Text());
        var json = configMap["data"]!["mai-image-gateway.json"].Text();
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(Repo.Read(DashboardPath)), JsonNode.Parse(json!)), $"{overlay}: the dashboard ConfigMap is not {DashboardPath}.");
    }
}
