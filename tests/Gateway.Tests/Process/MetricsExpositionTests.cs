using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests.Process;

/// <summary>
/// /metrics of the real process as Prometheus' own tools read it: promtool finds nothing to say about the gateway's
/// series, and the alert rules and the Grafana dashboard in deploy/ query series that exist.
/// </summary>
[Collection(nameof(GatewayProcesses))]
public sealed partial class MetricsExpositionTests(RedisServer redis)
{
    private const string TightKey = "tight-client-key-5a0c11";

    private static readonly string[] MonitoringFiles =
        ["deploy/components/monitoring/prometheusrule.yaml", "deploy/components/monitoring/grafana-dashboard.json"];

    [Fact]
    public async Task Scrape_IsCleanForPromtool_AndHasEverySeriesTheAlertsAndTheDashboardQuery()
    {
        await using var world = await ProcessHarness.StartAsync(redis, ProcessHarness.BuiltDll, webhooks: true, settings: new Dictionary<string, string>
        {
            ["Clients__tight__KeySha256"] = GatewayHarness.Sha256(TightKey),
            ["Clients__tight__ImagesPerDay"] = "1",
            ["Clients__tight__DailyBudgetUsd"] = "5",
        });
        var ct = TestContext.Current.CancellationToken;
        using var client = world.Client();
        using var anonymous = world.Client(key: null);
        using var tight = world.Client(TightKey);

        // Traffic that makes every series the alerts and the dashboard use exist: a generation through to its webhook,
        // its result and event stream, a webhook refused, and a client refused by its daily image limit.
        var id = await client.SubmitAsync(new { prompt = "a lighthouse, scraped" });
        await client.WaitUntilDoneAsync(id);
        using (await client.GetAsync($"/v1/generations/{id}/result", ct))
        using (await client.GetAsync($"/v1/generations/{id}/events", ct))
        using (var refused = await anonymous.PostAsync("/v1/webhooks/fal", new StringContent("{}"), ct))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        await tight.SubmitAsync(new { prompt = "within the limit" });
        using (var overLimit = await tight.PostJsonAsync("/v1/generations", new { prompt = "over the limit" }))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, overLimit.StatusCode);
        }

        var expected = MonitoringFiles.SelectMany(f => MetricName().Matches(File.ReadAllText(Path.Combine(ProcessGateway.RepoRoot, f))).Select(m => m.Value))
            .ToHashSet(StringComparer.Ordinal);
        Assert.True(expected.Count >= 10, $"the monitoring files name only [{string.Join(", ", expected)}]");
        var scrape = "";
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(20))
        {
            scrape = await anonymous.GetStringAsync(new Uri("/metrics", UriKind.Relative), ct);
            if (expected.IsSubsetOf(SampleNames(scrape)))
            {
                break;
            }

            await Task.Delay(200, ct);
        }

        var missing = expected.Except(SampleNames(scrape)).Order(StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0, $"deploy/components/monitoring queries series that /metrics does not have: [{string.Join(", ", missing)}]\n"
            + $"it has: [{string.Join(", ", SampleNames(scrape).Order(StringComparer.Ordinal))}]{world.Describe()}");
        Assert.DoesNotContain("gateway_gateway_", scrape, StringComparison.Ordinal);
        Assert.Contains("# TYPE gateway_webhooks_rejected_total counter", scrape, StringComparison.Ordinal);
        Assert.Contains("# TYPE http_server_request_duration_seconds histogram", scrape, StringComparison.Ordinal);
        Assert.Contains("http_server_request_duration_seconds_bucket{", scrape, StringComparison.Ordinal);

        // The runtime's own instruments keep OpenTelemetry's semantic-convention names, three of which end in _count
        // (dotnet.assembly.count, dotnet.process.cpu.count, dotnet.timer.count) and so draw promtool's naming note:
        // those are the only notes, and the gateway's own series (everything else) have none.
        var (exitCode, notes) = await PromtoolAsync(WithoutFamilies(scrape, "dotnet_"));
        Assert.True(exitCode == 0 && notes.Length == 0, $"promtool check metrics on the gateway's series ({exitCode}):\n{notes}");
        var (_, allNotes) = await PromtoolAsync(scrape);
        var others = allNotes.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("dotnet_", StringComparison.Ordinal)).ToList();
        Assert.True(others.Count == 0, $"promtool check metrics on the whole scrape:\n{allNotes}");
        Assert.DoesNotContain(world.FalKey, scrape, StringComparison.Ordinal);
        Assert.DoesNotContain(TightKey, scrape, StringComparison.Ordinal);
    }

    /// <summary>The metric names of the samples (histograms as their _bucket, _sum and _count series).</summary>
    private static HashSet<string> SampleNames(string exposition) =>
        exposition.Split('\n')
            .Where(line => line.Length > 0 && line[0] != '#')
            .Select(line => line[..line.IndexOfAny(['{', ' '])])
            .ToHashSet(StringComparer.Ordinal);

    /// <summary>The exposition without the families whose names start with <paramref name="prefix"/>.</summary>
    private static string WithoutFamilies(string exposition, string prefix) =>
        string.Join('\n', exposition.Split('\n').Where(line =>
            !(line.StartsWith(prefix, StringComparison.Ordinal)
              || line.StartsWith("# TYPE " + prefix, StringComparison.Ordinal)
              || line.StartsWith("# HELP " + prefix, StringComparison.Ordinal)
              || line.StartsWith("# UNIT " + prefix, StringComparison.Ordinal))));

    private static async Task<(int ExitCode, string Output)> PromtoolAsync(string exposition)
    {
        var promtool = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, "promtool")).FirstOrDefault(File.Exists);
        Assert.True(promtool is not null, "promtool is not on PATH. It comes in Debian's `prometheus` package; .ci/run extracts just the binary when it is missing "
            + "(apt-get download prometheus; dpkg-deb --fsys-tarfile prometheus_*.deb | tar -x ./usr/bin/promtool).");
        var start = new ProcessStartInfo(promtool, ["check", "metrics"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.StandardInput.WriteAsync(exposition);
        process.StandardInput.Close();
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        return (process.ExitCode, (await stdout + await stderr).Trim());
    }

    [GeneratedRegex(@"\b(?:gateway|http_server|http_client|kestrel|dotnet)_[a-z0-9_]+")]
    private static partial Regex MetricName();
}
