using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Gateway.Tests.Infrastructure;
using Gateway.Tests.Process;

namespace Gateway.Benchmarks.Throughput;

/// <summary>One row of the table: what wrk drives, every run's figures, and for a gateway row its ratios to the references run just before it.</summary>
internal sealed class ThroughputRow(string path, Uri url, IReadOnlyDictionary<string, string> headers, bool gateway, string? target = null, double? ratio = null, bool toNginx = false)
{
    public string Path { get; } = path;
    public Uri Url { get; } = url;
    public IReadOnlyDictionary<string, string> Headers { get; } = headers;
    public bool Gateway { get; } = gateway;

    /// <summary>The issue's target, e.g. ≥ 0.7× the ceiling (<see cref="Ratio"/> of <see cref="ToNginx"/> ? nginx : the ceiling).</summary>
    public string? Target { get; } = target;
    public double? Ratio { get; } = ratio;
    public bool ToNginx { get; } = toNginx;

    public List<WrkFigures> Runs { get; } = [];
    public List<long> PeakRssKiB { get; } = [];

    /// <summary>Per round: req/s over the ceiling's, over nginx's, and p99 over nginx's, each measured just before this row.</summary>
    public List<(double ToCeiling, double ToNginx, double P99ToNginx)> Ratios { get; } = [];

    public double RequestsPerSecond => Median(Runs.Select(r => r.RequestsPerSecond));

    public double P99Ms => Median(Runs.Select(r => r.P99Ms));

    public double ToCeilingRatio => Median(Ratios.Select(r => r.ToCeiling));

    public double ToNginxRatio => Median(Ratios.Select(r => r.ToNginx));

    public double P99ToNginxRatio => Median(Ratios.Select(r => r.P99ToNginx));

    public long Errors => Runs.Sum(r => r.Errors);

    /// <summary>The median, so one run disturbed by the machine's other work does not decide.</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN
            : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}

/// <summary>
/// Issue 13: the hot paths side by side, in one run on one machine. Starts nginx as a fal stub and nginx as a
/// reverse proxy in front of it, a bare minimal API (the framework's ceiling), and the published gateway as its own
/// process in Production (Redis, client-key auth, request logging, metrics and tracing on, as deployed) with the
/// stub as fal; then drives each path with wrk (1 thread, 32 connections) and prints req/s, the ratios to nginx and
/// to the ceiling, p99, and the gateway's peak RSS during each run.
/// </summary>
internal sealed class ThroughputRun : IAsyncDisposable
{
    public static readonly TimeSpan Duration = TimeSpan.FromSeconds(4);
    private static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(1);
    private const int Streams = 1_000;
    private const int StreamGenerations = 50;

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "gateway-throughput-" + Guid.NewGuid().ToString("N"));
    private readonly string _clientKey = "bench-client-" + Guid.NewGuid().ToString("N");
    private LocalRedis? _redis;
    private NginxServer? _stub;
    private NginxServer? _proxy;
    private CeilingApp? _ceiling;
    private ProcessGateway? _gateway;
    private List<string> _running = [];

    public string GatewayOutput => _gateway is null ? ""
        : $"gateway {(_gateway.HasExited ? $"exited with {_gateway.ExitCode}" : "still running")}; its last lines:\n{_gateway.Output}";

    public async Task ExecuteAsync(int rounds, CancellationToken cancellationToken)
    {
        NginxServer.RequireTools();
        Directory.CreateDirectory(_directory);
        // BENCH_GATEWAY_PUBLISHED=DIR measures a build published elsewhere (another commit, for a before/after): its
        // self-contained executable, or Gateway.dll through the dotnet host for a framework-dependent build.
        var dll = Environment.GetEnvironmentVariable("BENCH_GATEWAY_PUBLISHED") is { Length: > 0 } published
            ? ProcessGateway.PublishedExecutable(published) is var executable && File.Exists(executable) ? executable : Path.Combine(published, "Gateway.dll")
            : null;
        if (dll is null)
        {
            Console.WriteLine("throughput: publishing the gateway (Release, self-contained and trimmed, as the image holds it)…");
            dll = await ProcessGateway.PublishAsync(Path.Combine(_directory, "gateway"), cancellationToken);
        }
        else
        {
            Console.WriteLine($"throughput: the gateway published at {dll}");
        }

        _redis = await LocalRedis.StartAsync(cancellationToken);
        _stub = await NginxServer.StartFalStubAsync(_directory, cancellationToken);
        _proxy = await NginxServer.StartReverseProxyAsync(_directory, _stub, cancellationToken);
        _ceiling = await CeilingApp.StartAsync(cancellationToken);
        _gateway = await StartGatewayAsync(dll, cancellationToken);
        Console.WriteLine($"{Environment.ProcessorCount} cores; gateway pid {_gateway.ProcessId} on {_gateway.BaseAddress}, fal stub (nginx) on {_stub.Port}, "
            + $"nginx proxy on {_proxy.Port}, ceiling on {_ceiling.Url.Port}; logs under {_directory}");

        using var client = NewClient(_gateway.BaseAddress);
        var (completed, running) = await PrepareGenerationsAsync(client, cancellationToken);
        var auth = new Dictionary<string, string> { ["Authorization"] = "Bearer " + _clientKey };
        var proxyTarget = $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{running}/status";
        var proxied = new ThroughputRow("/api/fal/proxy status (x-fal-target-url), running", GatewayUrl("/api/fal/proxy"),
            new Dictionary<string, string>(auth) { ["x-fal-target-url"] = proxyTarget }, gateway: true, "≥ 1.0× nginx", 1.0, toNginx: true);
        List<ThroughputRow> rows =
        [
            new("bare minimal API, small JSON (the framework's ceiling)", _ceiling.Url, new Dictionary<string, string>(), gateway: false),
            new("nginx reverse proxy → stub, status (running)", new Uri(_proxy.BaseAddress, $"/microsoft/mai-image-2.5/requests/{running}/status"),
                new Dictionary<string, string>(), gateway: false),
            new("/v1 status, completed", GatewayUrl($"/v1/generations/{completed}/status"), auth, gateway: true, "≥ 0.7× ceiling", 0.7),
            new("/v1 result, completed", GatewayUrl($"/v1/generations/{completed}/result"), auth, gateway: true, "≥ 0.7× ceiling", 0.7),
            new("/v1 status, running", GatewayUrl($"/v1/generations/{running}/status"), auth, gateway: true, "≥ 0.6× ceiling", 0.6),
            proxied,
        ];

        Console.WriteLine($"completed generation {completed}, running generation {running}; {rounds} rounds; in each, every gateway row runs right "
            + $"after the ceiling and nginx, each run {WarmUp.TotalSeconds:F0} s warm-up then {Duration.TotalSeconds:F0} s measured; ratios are per round, the table shows medians");
        var (ceiling, nginx) = (rows[0], rows[1]);
        foreach (var row in rows)
        {
            await Wrk.RunAsync(row.Url, row.Headers, TimeSpan.FromSeconds(5), cancellationToken); // JIT and tiering, once, before anything counts
        }

        var proxiedStatusCalls = 0;
        for (var round = 1; round <= rounds; round++)
        {
            Console.WriteLine($"round {round} of {rounds}");
            foreach (var row in rows.Where(r => r.Gateway))
            {
                var c = await MeasureAsync(ceiling, cancellationToken);
                var n = await MeasureAsync(nginx, cancellationToken);
                var before = row == proxied ? await StubStatusCallsAsync(running, cancellationToken) : 0;
                var g = await MeasureAsync(row, cancellationToken);
                proxiedStatusCalls += row == proxied ? await StubStatusCallsAsync(running, cancellationToken) - before : 0;
                row.Ratios.Add((g.RequestsPerSecond / c.RequestsPerSecond, g.RequestsPerSecond / n.RequestsPerSecond, g.P99Ms / n.P99Ms));
            }
        }

        var withStreams = new ThroughputRow($"/v1 status, completed, with {Streams:N0} event streams open", GatewayUrl($"/v1/generations/{completed}/status"), auth, gateway: true);
        var (openRss, streamsConnected) = await MeasureWithStreamsAsync(withStreams, ceiling, nginx, client, rounds, cancellationToken);
        rows.Add(withStreams);

        Console.WriteLine(Report(rows, rounds, proxiedStatusCalls, openRss, streamsConnected));
    }

    private Uri GatewayUrl(string path) => new(_gateway!.BaseAddress, path);

    private async Task<ProcessGateway> StartGatewayAsync(string dll, CancellationToken cancellationToken)
    {
        var port = ProcessGateway.FreePort();
        var fal = _stub!.BaseAddress.ToString().TrimEnd('/');
        // Production as deployed: appsettings.json's logging (Information: one request line per request), /metrics,
        // tracing instrumentation, Redis; no webhooks (the stub cannot sign them), so the gateway learns of ends by asking fal.
        var environment = new Dictionary<string, string>
        {
            ["ConnectionStrings__Redis"] = _redis!.ConnectionString,
            ["Fal__Key"] = "bench-" + Guid.NewGuid().ToString("N") + ":secret",
            ["Fal__QueueBaseUrl"] = fal,
            ["Fal__RestBaseUrl"] = fal,
            ["Fal__RunBaseUrl"] = fal,
            ["Fal__JwksUrl"] = fal + "/.well-known/jwks.json",
            ["Clients__bench__KeySha256"] = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(_clientKey))),
            ["Clients__bench__RequestsPerMinute"] = "1000000",
            ["Clients__bench__ImagesPerDay"] = "10000000",
            ["Clients__bench__MaxConcurrent"] = "100000",
        };
        // BENCH_GATEWAY_ENV="DOTNET_TieredCompilation=0 …" measures a runtime setting without rebuilding.
        foreach (var pair in (Environment.GetEnvironmentVariable("BENCH_GATEWAY_ENV") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var (name, value) = pair.Split('=', 2) is [var n, var v] ? (n, v) : throw new InvalidOperationException($"BENCH_GATEWAY_ENV: '{pair}' is not NAME=VALUE");
            environment[name] = value;
            Console.WriteLine($"gateway environment: {name}={value}");
        }

        var gateway = ProcessGateway.Start(dll, environment, port, outputFile: Path.Combine(_directory, "gateway.log"));
        try
        {
            await gateway.WaitUntilReadyAsync(TimeSpan.FromSeconds(60), cancellationToken);
            return gateway;
        }
        catch
        {
            gateway.Dispose(); // not yet the run's: a gateway that never got ready is stopped here, not left running
            throw;
        }
    }

    private HttpClient NewClient(Uri gateway)
    {
        var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = int.MaxValue, ConnectTimeout = TimeSpan.FromSeconds(10) })
        {
            BaseAddress = gateway,
            Timeout = Timeout.InfiniteTimeSpan, // event streams stay open; the run's deadline bounds everything
        };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _clientKey);
        return client;
    }

    /// <summary>
    /// Submits through the gateway until it has one generation the stub calls completed and one it calls running
    /// (plus the running ones the event streams watch); the completed one is then read once, so the gateway fetches
    /// and stores its result as it would for any client.
    /// </summary>
    private async Task<(string Completed, string Running)> PrepareGenerationsAsync(HttpClient client, CancellationToken cancellationToken)
    {
        var completed = new List<string>();
        var running = new List<string>();
        for (var i = 0; (completed.Count == 0 || running.Count < StreamGenerations) && i < 1_000; i++)
        {
            using var submit = await client.PostAsync(new Uri("/v1/generations", UriKind.Relative),
                new StringContent($"{{\"prompt\":\"a lighthouse at dusk, take {i}\"}}", Encoding.UTF8, "application/json"), cancellationToken);
            var body = await submit.Content.ReadAsStringAsync(cancellationToken);
            if (submit.StatusCode != HttpStatusCode.Accepted)
            {
                throw new InvalidOperationException($"submit answered {(int)submit.StatusCode}: {body}");
            }

            var id = JsonNode.Parse(body)!["id"]!.GetValue<string>();
            (id[0] is >= '0' and <= '7' ? running : completed).Add(id);
        }

        using var status = await client.GetAsync(new Uri($"/v1/generations/{completed[0]}/status", UriKind.Relative), cancellationToken);
        var seen = JsonNode.Parse(await status.Content.ReadAsStringAsync(cancellationToken))!["status"]!.GetValue<string>();
        using var result = await client.GetAsync(new Uri($"/v1/generations/{completed[0]}/result", UriKind.Relative), cancellationToken);
        using var pending = await client.GetAsync(new Uri($"/v1/generations/{running[0]}/status", UriKind.Relative), cancellationToken);
        var pendingSeen = JsonNode.Parse(await pending.Content.ReadAsStringAsync(cancellationToken))!["status"]!.GetValue<string>();
        if (!seen.Equals("completed", StringComparison.OrdinalIgnoreCase) || result.StatusCode != HttpStatusCode.OK
            || !pendingSeen.Equals("in_progress", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"the generations are not what the run needs: {completed[0]} is {seen} (result {(int)result.StatusCode}), {running[0]} is {pendingSeen}");
        }

        _running = running;
        return (completed[0], running[0]);
    }

    private async Task<WrkFigures> MeasureAsync(ThroughputRow row, CancellationToken cancellationToken)
    {
        await Wrk.RunAsync(row.Url, row.Headers, WarmUp, cancellationToken); // JIT, tiering, pools, connections
        using var sampling = new CancellationTokenSource();
        var peak = row.Gateway ? SamplePeakRssAsync(sampling.Token) : Task.FromResult(0L);
        var figures = await Wrk.RunAsync(row.Url, row.Headers, Duration, cancellationToken);
        await sampling.CancelAsync();
        var rss = await peak;
        row.Runs.Add(figures);
        if (row.Gateway)
        {
            row.PeakRssKiB.Add(rss);
        }

        Console.WriteLine($"  {row.Path}: {figures.RequestsPerSecond:F0} req/s, p99 {figures.P99Ms:F2} ms"
            + (row.Gateway ? $", peak RSS {rss / 1024.0:F1} MiB" : "") + (figures.Errors > 0 ? $"  [{figures.Errors} errors or non-2xx answers]" : ""));
        return figures;
    }

    /// <summary>The gateway's highest VmRSS, sampled every 100 ms until cancelled.</summary>
    private async Task<long> SamplePeakRssAsync(CancellationToken cancellationToken)
    {
        var peak = 0L;
        while (!cancellationToken.IsCancellationRequested)
        {
            peak = Math.Max(peak, _gateway!.Memory().RssKiB);
            await Task.Delay(100, CancellationToken.None);
        }

        return peak;
    }

    /// <summary>
    /// Opens 1,000 event streams on running generations, measures RSS with them open, then under wrk for as many rounds
    /// as the other rows (each right after the ceiling and nginx, the medians reported like theirs); closes them.
    /// </summary>
    private async Task<(long OpenRssKiB, int Connected)> MeasureWithStreamsAsync(
        ThroughputRow row, ThroughputRow ceiling, ThroughputRow nginx, HttpClient client, int rounds, CancellationToken cancellationToken)
    {
        Console.WriteLine($"opening {Streams:N0} event streams on {StreamGenerations} running generations…");
        using var closing = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var connected = 0;
        using var opening = new SemaphoreSlim(50);
        var streams = Enumerable.Range(0, Streams).Select(i => Task.Run(async () =>
        {
            await opening.WaitAsync(closing.Token);
            var released = false;
            try
            {
                using var response = await client.GetAsync(new Uri($"/v1/generations/{_running[i % StreamGenerations]}/events", UriKind.Relative),
                    HttpCompletionOption.ResponseHeadersRead, closing.Token);
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    return;
                }

                var reader = new ServerSentEventReader(await response.Content.ReadAsStreamAsync(closing.Token));
                if (await reader.NextAsync(closing.Token) is null)
                {
                    return;
                }

                Interlocked.Increment(ref connected);
                opening.Release();
                released = true;
                while (await reader.NextAsync(closing.Token) is not null)
                {
                }
            }
            catch (OperationCanceledException) when (closing.IsCancellationRequested)
            {
            }
            finally
            {
                if (!released)
                {
                    opening.Release();
                }
            }
        }, CancellationToken.None)).ToList();

        var clock = Stopwatch.StartNew();
        while (Volatile.Read(ref connected) < Streams && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            await Task.Delay(100, cancellationToken);
        }

        await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
        var open = _gateway!.Memory().RssKiB;
        Console.WriteLine($"  {Volatile.Read(ref connected):N0} streams open in {clock.Elapsed.TotalSeconds:F1} s; RSS {open / 1024.0:F1} MiB");
        for (var round = 1; round <= rounds; round++)
        {
            var c = await MeasureAsync(ceiling, cancellationToken);
            var n = await MeasureAsync(nginx, cancellationToken);
            var g = await MeasureAsync(row, cancellationToken);
            row.Ratios.Add((g.RequestsPerSecond / c.RequestsPerSecond, g.RequestsPerSecond / n.RequestsPerSecond, g.P99Ms / n.P99Ms));
        }

        var stillOpen = Volatile.Read(ref connected);
        await closing.CancelAsync();
        await Task.WhenAll(streams);
        return (open, stillOpen);
    }

    private async Task<int> StubStatusCallsAsync(string id, CancellationToken cancellationToken)
    {
        await Task.Delay(TimeSpan.FromSeconds(1.5), cancellationToken); // nginx flushes its access log every second
        return _stub!.CountLogged($"/requests/{id}/status ");
    }

    private static string Report(List<ThroughputRow> rows, int rounds, int proxiedStatusCalls, long openRssKiB, int streamsConnected)
    {
        static string F(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
        static string Met(bool met) => met ? "met" : "NOT met";
        var (ceiling, nginx) = (rows[0], rows[1]);
        var lines = new List<string>
        {
            "",
            $"===================== gateway throughput (wrk: {Wrk.Threads} thread, {Wrk.Connections} connections, {Duration.TotalSeconds:F0} s per row and round) =====================",
            $"{Environment.ProcessorCount} cores, all in one run; req/s and p99: medians of all runs; ratios: medians over {rounds} rounds of each gateway row against the ceiling and nginx run just before it",
            "the gateway published (Release), Production, Redis, auth, request logging, metrics, tracing",
            "",
            "| path | req/s | × nginx | × ceiling | p99 | p99 × nginx | gateway RSS (peak) | target |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        };
        foreach (var row in rows)
        {
            var (toCeiling, toNginx, p99ToNginx) = row.Gateway
                ? (row.ToCeilingRatio, row.ToNginxRatio, row.P99ToNginxRatio)
                : (row.RequestsPerSecond / ceiling.RequestsPerSecond, row.RequestsPerSecond / nginx.RequestsPerSecond, row.P99Ms / nginx.P99Ms);
            var targets = new List<string>();
            if (row is { Target: { } target, Ratio: { } ratio })
            {
                targets.Add($"{target}: {Met((row.ToNginx ? toNginx : toCeiling) >= ratio)}");
            }

            if (row.Gateway)
            {
                targets.Add($"p99 ≤ 1.5× nginx: {Met(p99ToNginx <= 1.5)}");
            }

            lines.Add($"| {row.Path} | {F(row.RequestsPerSecond, "N0")} | {F(toNginx, "F2")} | {F(toCeiling, "F2")} | {F(row.P99Ms, "F2")} ms | {F(p99ToNginx, "F2")} | "
                + $"{(row.Gateway ? F(row.PeakRssKiB.Max() / 1024.0, "F1") + " MiB" : "—")} | {string.Join("; ", targets)}{(row.Errors > 0 ? $" [{row.Errors} errors]" : "")} |");
        }

        var underLoad = rows.Where(r => r.Gateway).SkipLast(1).Max(r => r.PeakRssKiB.Max());
        var withStreams = rows[^1].PeakRssKiB.Max();
        var proxiedSeconds = rounds * (Duration + WarmUp).TotalSeconds;
        lines.Add("");
        lines.Add($"gateway RSS under load (highest of the rows above the last): {F(underLoad / 1024.0, "F1")} MiB (target ≤ 120 MB: {Met(underLoad * 1024 <= 120_000_000)})");
        lines.Add($"with {streamsConnected:N0} event streams open: {F(openRssKiB / 1024.0, "F1")} MiB idle, {F(withStreams / 1024.0, "F1")} MiB at peak under load "
            + $"(target ≤ 150 MB: {Met(Math.Max(openRssKiB, withStreams) * 1024 <= 150_000_000)})");
        lines.Add($"fal status calls for the generation polled through the proxy, during its rows ({F(proxiedSeconds, "F0")} s with warm-ups): "
            + $"{proxiedStatusCalls}, {F(proxiedStatusCalls / proxiedSeconds, "F2")} a second (StatusCacheTtl 1 s: at most one a second, plus the reconciler's own looks)");
        lines.Add(new string('=', 100));
        return string.Join('\n', lines);
    }

    public void Kill()
    {
        _gateway?.Dispose();
        _proxy?.Dispose();
        _stub?.Dispose();
        _redis?.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        if (_ceiling is not null)
        {
            await _ceiling.DisposeAsync();
        }

        if (Environment.GetEnvironmentVariable("BENCH_KEEP_LOGS") is not "1")
        {
            try
            {
                Directory.Delete(_directory, recursive: true);
            }
            catch (IOException)
            {
                // a temp directory left behind is harmless
            }
        }
    }
}
