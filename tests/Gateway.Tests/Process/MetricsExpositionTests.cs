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
public sealed partial class MetricsExpositionTests(RedisServer redis, PublishedGateway published)
{
    private const string TightKey = "tight-client-key-5a0c11";

    private static readonly string[] MonitoringFiles =
        ["deploy/components/monitoring/prometheusrule.yaml", "deploy/components/monitoring/grafana-dashboard.json"];

    [Fact]
    public async Task Scrape_IsCleanForPromtool_AndHasEverySeriesTheAlertsAndTheDashboardQuery()
    {
        await using var world = await ProcessHarness.StartAsync(redis, published.Executable, webhooks: true, settings: new Dictionary<string, string>
        {
            ["Clients__tight__KeySha256"] = GatewayHarness.Sha256(TightKey),
            ["Clients__tight__ImagesPerDay"] = "1",
            ["Clients__tight__DailyBudgetUsd"] = "5",
        });
        var ct = TestContext.Current.CancellationToken;
        using var client = world.Client();
        using var anonymous = world.Client(key: null);
        using var tight = world.Client(TightKey);

        // Before any traffic: counters with a known set of labels are there at zero, so that an alert's increase() sees
        // the first event (a series born with value 1 has not increased).
        var fresh = await anonymous.GetStringAsync(new Uri("/metrics", UriKind.Relative), ct);
        foreach (var (name, labels) in new (string, string[])[]
        {
            ("gateway_images_copies_total", ["outcome=\"failed\""]),
            ("gateway_images_copies_total", ["outcome=\"retry\""]),
            ("gateway_images_copies_total", ["outcome=\"stored\""]),
            ("gateway_images_swept_total", []),
            ("gateway_webhooks_rejected_total", ["reason=\"BadSignature\""]),
            ("gateway_webhooks_rejected_total", ["reason=\"UnknownGeneration\""]),
            ("gateway_webhooks_accepted_total", ["duplicate=\"false\""]),
            ("gateway_cache_lookups_total", ["cache=\"status\"", "outcome=\"miss\""]),
            ("gateway_cache_lookups_total", ["cache=\"result\"", "outcome=\"hit\""]),
            ("gateway_client_submits_total", ["client=\"tight\""]),
            ("gateway_client_spend_usd_total", ["client=\"tight\""]),
            ("gateway_client_limit_refusals_total", ["client=\"tight\"", "limit=\"ImagesPerDay\""]),
        })
        {
            var zero = fresh.Split('\n').Any(line => line.StartsWith(name + "{", StringComparison.Ordinal)
                && labels.All(label => line.Contains(label, StringComparison.Ordinal)) && line.EndsWith("} 0", StringComparison.Ordinal));
            Assert.True(zero, $"a fresh gateway's /metrics has no {name}{{{string.Join(",", labels)}}} at 0:\n{fresh}");
        }

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

        // The whole scrape, the runtime's series included: .NET's System.Runtime meter names three gauges *.count
        // (dotnet.assembly.count, dotnet.process.cpu.count, dotnet.timer.count), which promtool flags; the gateway
        // renames them (dotnet_assemblies_loaded, dotnet_process_cpus, dotnet_timers_active), it does not drop them.
        var (exitCode, notes) = await PromtoolAsync(scrape);
        Assert.True(exitCode == 0 && notes.Length == 0, $"promtool check metrics on the whole scrape ({exitCode}):\n{notes}");
        foreach (var runtime in new[] { "dotnet_assemblies_loaded", "dotnet_process_cpus", "dotnet_timers_active", "dotnet_gc_collections_total" })
        {
            Assert.True(SampleNames(scrape).Contains(runtime), $"/metrics has no {runtime}");
        }

        Assert.DoesNotContain(world.FalKey, scrape, StringComparison.Ordinal);
        Assert.DoesNotContain(TightKey, scrape, StringComparison.Ordinal);
    }

    /// <summary>The metric names of the samples (histograms as their _bucket, _sum and _count series).</summary>
    private static HashSet<string> SampleNames(string exposition) =>
        exposition.Split('\n')
            .Where(line => line.Length > 0 && line[0] != '#')
            .Select(line => line[..line.IndexOfAny(['{', ' '])])
            .ToHashSet(StringComparer.Ordinal);

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
