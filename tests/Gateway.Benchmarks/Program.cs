using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using FalEmulator;
using Gateway.Benchmarks;
using Gateway.Benchmarks.Throughput;
using Gateway.Tests.Process;

// Two phases, each against the gateway as its own process (so /proc/{pid} measures it alone), a throwaway
// redis-server and the fal stand-in, which signs and delivers real webhooks:
//   latency  webhook-to-client latency and the memory of 1,000 open event streams (about 2 minutes)
//   memory   RSS idle, under a few thousand mixed requests and for a minute after, once per GC configuration
//            (chosen and old; memory=all adds the other candidates; memory=NAME,NAME picks some)
//   throughput  the hot paths under wrk beside nginx and a bare minimal API, 5 rounds (=N: N rounds; issue 13; needs nginx and wrk)
// No argument runs latency and memory. Bounded: 3 minutes for latency, 4 per memory configuration, 5 + 2 per round for throughput.
if (BenchmarkPhases.Parse(args) is not { } phases)
{
    await Console.Error.WriteLineAsync("usage: dotnet run -c Release --project tests/Gateway.Benchmarks -- [latency] [memory[=all|NAME,NAME]] [throughput[=ROUNDS]]\n"
        + "configurations: " + string.Join(", ", GcConfiguration.All.Select(c => $"{c.Name} ({c.Description})")));
    return 64;
}

var configuration = typeof(BenchmarkRun).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
using var overall = new CancellationTokenSource(phases.Budget);
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    overall.Cancel();
};

var run = new BenchmarkRun(configuration);
var throughput = new ThroughputRun();
AppDomain.CurrentDomain.ProcessExit += (_, _) =>
{
    run.Kill();
    throughput.Kill();
};
try
{
    if (phases.Throughput)
    {
        await throughput.ExecuteAsync(phases.ThroughputRounds, overall.Token);
    }

    await run.ExecuteAsync(phases, overall.Token);
    return 0;
}
catch (OperationCanceledException) when (overall.IsCancellationRequested)
{
    await Console.Error.WriteLineAsync($"The benchmark did not finish within {phases.Budget.TotalMinutes:F0} minutes; stopped.\n" + run.GatewayOutput + throughput.GatewayOutput);
    return 2;
}
catch (InvalidOperationException e)
{
    await Console.Error.WriteLineAsync($"The benchmark failed: {e.Message}\n{run.GatewayOutput}{throughput.GatewayOutput}");
    return 1;
}
finally
{
    await throughput.DisposeAsync();
    await run.DisposeAsync();
}

/// <summary>What to run, from the command line.</summary>
internal sealed record BenchmarkPhases(bool Latency, IReadOnlyList<GcConfiguration> Memory, int ThroughputRounds = 0)
{
    public bool Throughput => ThroughputRounds > 0;

    public TimeSpan Budget => TimeSpan.FromMinutes((Latency ? 3 : 0) + 4 * Memory.Count + (Throughput ? 5 + 2 * ThroughputRounds : 0));

    public static BenchmarkPhases? Parse(string[] args)
    {
        if (args.Length == 0)
        {
            return new BenchmarkPhases(true, [GcConfiguration.Chosen, GcConfiguration.Old]);
        }

        var latency = false;
        var throughput = 0;
        var memory = new List<GcConfiguration>();
        foreach (var arg in args)
        {
            var (name, value) = arg.Split('=', 2) switch { [var n] => (n, null), [var n, var v] => (n, v), _ => (arg, null) };
            if (name == "latency" && value is null)
            {
                latency = true;
            }
            else if (name == "throughput")
            {
                if (value is null)
                {
                    throughput = 5; // one run's rounds spread 0.93-1.21 x nginx: a median of 5 moves less than one of 3
                }
                else if (!int.TryParse(value, out throughput) || throughput is < 1 or > 20)
                {
                    return null;
                }
            }
            else if (name == "memory")
            {
                var names = value is null ? [GcConfiguration.Chosen.Name, GcConfiguration.Old.Name]
                    : value == "all" ? GcConfiguration.All.Select(c => c.Name).ToArray()
                    : value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                foreach (var wanted in names)
                {
                    if (GcConfiguration.All.FirstOrDefault(c => c.Name == wanted) is not { } found)
                    {
                        return null;
                    }

                    memory.Add(found);
                }
            }
            else
            {
                return null;
            }
        }

        return new BenchmarkPhases(latency, memory, throughput);
    }
}

internal sealed class BenchmarkRun(string configuration) : IAsyncDisposable
{
    private const int WarmUpGenerations = 5;
    private const int LatencyGenerations = 200;
    private const int LatencyRunMs = 3_000;
    private const int FanOutGenerations = 50;
    private const int FanOutStreams = 1_000;
    private const int FanOutRunMs = 30_000;

    private LocalRedis? _redis;
    private FalEmulatorHost? _fal;
    private ProcessGateway? _gateway;

    public string GatewayOutput => _gateway is null ? ""
        : $"gateway {(_gateway.HasExited ? $"exited with {_gateway.ExitCode}" : "still running")}; its last lines:\n{_gateway.Output}";

    private readonly string _falKey = "bench-" + Guid.NewGuid().ToString("N") + ":secret";
    private readonly string _clientKey = "bench-client-" + Guid.NewGuid().ToString("N");

    public async Task ExecuteAsync(BenchmarkPhases phases, CancellationToken cancellationToken)
    {
        if (!phases.Latency && phases.Memory.Count == 0)
        {
            return;
        }

        _redis = await LocalRedis.StartAsync(cancellationToken);
        _fal = await FalEmulatorHost.StartAsync(new FalEmulatorOptions
        {
            Key = _falKey,
            QueueTime = TimeSpan.FromMilliseconds(20),
            RunTime = TimeSpan.FromSeconds(3),
            MaxConcurrent = 10_000,
            ImageLongSide = 64,
        }, cancellationToken: cancellationToken);

        Console.WriteLine($"{Environment.ProcessorCount} cores; redis on {_redis.Port}");
        if (phases.Latency)
        {
            await RunLatencyAsync(cancellationToken);
        }

        var memory = new List<MemoryFigures>();
        foreach (var gc in phases.Memory)
        {
            var gateway = await StartGatewayAsync(gc.Environment, cancellationToken);
            Console.WriteLine($"memory after load: {gc.Name} ({gc.Description}), gateway pid {gateway.ProcessId}…");
            using var scraper = new HttpClient { BaseAddress = gateway.BaseAddress, Timeout = TimeSpan.FromSeconds(10) };
            memory.Add(await MemoryAfterLoad.MeasureAsync(gateway, _clientKey, gc, () => ManagedHeapAsync(scraper, cancellationToken), cancellationToken));
        }

        if (memory.Count > 0)
        {
            Console.WriteLine(MemoryAfterLoad.Report(memory));
        }
    }

    /// <summary>Starts a fresh gateway process (ending the previous one) with <paramref name="extra"/> on top of the benchmark's settings.</summary>
    private async Task<ProcessGateway> StartGatewayAsync(IReadOnlyDictionary<string, string> extra, CancellationToken cancellationToken)
    {
        _gateway?.Dispose();
        var port = ProcessGateway.FreePort();
        var environment = new Dictionary<string, string>
        {
            ["ConnectionStrings__Redis"] = _redis!.ConnectionString,
            ["Fal__Key"] = _falKey,
            ["Fal__QueueBaseUrl"] = _fal!.QueueBaseUrl,
            ["Fal__RestBaseUrl"] = _fal.RestBaseUrl,
            ["Fal__RunBaseUrl"] = _fal.RunBaseUrl,
            ["Fal__JwksUrl"] = _fal.JwksUrl,
            ["Gateway__PublicBaseUrl"] = $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}",
            // Only the webhook may end a stream: no stream looks at fal itself, the reconciler waits a minute.
            ["Gateway__EventStreamPollInterval"] = "00:00:30",
            ["Gateway__WebhookGracePeriod"] = "00:01:00",
            ["Clients__bench__KeySha256"] = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(_clientKey))),
            ["Clients__bench__RequestsPerMinute"] = "1000000",
            ["Clients__bench__ImagesPerDay"] = "10000000",
            ["Clients__bench__MaxConcurrent"] = "100000", // the benchmark is about streams and memory, not the client's limits
            ["Serilog__MinimumLevel__Default"] = Environment.GetEnvironmentVariable("BENCH_GATEWAY_LOG_LEVEL") ?? "Warning",
        };
        foreach (var (name, value) in extra)
        {
            environment[name] = value;
        }

        _gateway = ProcessGateway.Start(ProcessGateway.BuiltDll(configuration), environment, port);
        await _gateway.WaitUntilReadyAsync(TimeSpan.FromSeconds(60), cancellationToken);
        return _gateway;
    }

    private async Task RunLatencyAsync(CancellationToken cancellationToken)
    {
        _gateway = await StartGatewayAsync(GcConfiguration.Chosen.Environment, cancellationToken);
        var started = _gateway.Memory();
        using var scraper = new HttpClient { BaseAddress = _gateway.BaseAddress, Timeout = TimeSpan.FromSeconds(10) };

        using var client = new BenchmarkClient(_gateway.BaseAddress, _clientKey);
        Console.WriteLine($"gateway pid {_gateway.ProcessId} ({configuration}) on {_gateway.BaseAddress}");

        // Warm-up: JIT, the JWKS fetch, Redis and HTTP connections.
        await RunOneStreamPerGenerationAsync(client, WarmUpGenerations, 300, cancellationToken);

        Console.WriteLine($"latency: {LatencyGenerations} generations, one event stream each…");
        var latency = await RunOneStreamPerGenerationAsync(client, LatencyGenerations, LatencyRunMs, cancellationToken);
        var latencyReport = await MeasureAsync(latency, cancellationToken);

        await Task.Delay(TimeSpan.FromSeconds(3), cancellationToken);
        var idle = _gateway.Memory();
        var idleHeap = await ManagedHeapAsync(scraper, cancellationToken);

        Console.WriteLine($"memory: {FanOutStreams} event streams on {FanOutGenerations} generations…");
        var generations = await SubmitAllAsync(client, FanOutGenerations, "fan-out", FanOutRunMs, cancellationToken);
        var connecting = System.Diagnostics.Stopwatch.StartNew();
        var connected = 0;
        var allConnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var opening = new SemaphoreSlim(50); // at most 50 streams connecting at once
        var streams = Enumerable.Range(0, FanOutStreams).Select(i => Task.Run(async () =>
        {
            await opening.WaitAsync(cancellationToken);
            var released = false;
            try
            {
                return await client.WatchAsync(generations[i % generations.Count], () =>
                {
                    released = true;
                    opening.Release();
                    if (Interlocked.Increment(ref connected) == FanOutStreams)
                    {
                        allConnected.TrySetResult();
                    }
                }, cancellationToken);
            }
            finally
            {
                if (!released)
                {
                    opening.Release();
                }
            }
        }, cancellationToken)).ToList();

        var failedEarly = Task.WhenAll(streams);
        await Task.WhenAny(allConnected.Task, failedEarly, Task.Delay(TimeSpan.FromSeconds(FanOutRunMs / 1000 - 5), cancellationToken));
        if (!allConnected.Task.IsCompleted)
        {
            await ((Task)failedEarly).WaitAsync(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            throw new InvalidOperationException($"only {Volatile.Read(ref connected)} of {FanOutStreams} streams connected before the generations ended"
                + (failedEarly.Exception is { } e ? $": {e.InnerExceptions[0].Message}" : ""));
        }

        var connectTime = connecting.Elapsed;
        await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken); // let the last streams settle
        var open = _gateway.Memory();
        var openHeap = await ManagedHeapAsync(scraper, cancellationToken);

        var fanOut = await Task.WhenAll(streams);
        var fanOutReport = await MeasureAsync(fanOut, cancellationToken);
        await Task.Delay(TimeSpan.FromSeconds(3), cancellationToken);
        var after = _gateway.Memory();

        var lastTerminal = fanOut.Max(o => o.EndedAt);
        var sends = await WebhookSendsAsync(fanOut.Select(o => o.Id).Distinct(), cancellationToken);
        var lastSend = sends.Values.Max();
        var firstSend = sends.Values.Min();

        static string MiB(long kib) => (kib / 1024.0).ToString("F1", CultureInfo.InvariantCulture) + " MiB";
        var perStream = (open.RssKiB - idle.RssKiB) / (double)FanOutStreams;
        Console.WriteLine($"""

            ===================== gateway benchmark results =====================
            gateway: separate process, {configuration}, Production, Redis + webhooks; {Environment.ProcessorCount} cores
            webhook sent by fal -> terminal SSE event read by the client
              {LatencyGenerations} generations, one stream each:  {latencyReport}
              {FanOutGenerations} generations x {FanOutStreams / FanOutGenerations} streams:    {fanOutReport}
              all {FanOutStreams:N0} terminal events read {(lastTerminal - lastSend).TotalMilliseconds:F0} ms after the last webhook send ({(lastTerminal - firstSend).TotalMilliseconds:F0} ms after the first)
            gateway memory (VmRSS)
              ready, before any request:     {MiB(started.RssKiB)}
              idle after the latency run:    {MiB(idle.RssKiB)}
              with {FanOutStreams:N0} streams open:       {MiB(open.RssKiB)}  (+{perStream:F1} KiB per stream; {FanOutStreams:N0} connected in {connectTime.TotalSeconds:F1} s)
              after the streams ended:       {MiB(after.RssKiB)}
              peak (VmHWM):                  {MiB(after.PeakRssKiB)}
            gateway managed heap after the last GC (/metrics, System.Runtime)
              idle {idleHeap}, with {FanOutStreams:N0} streams open {openHeap}
            =====================================================================
            """);
    }

    private static async Task<StreamOutcome[]> RunOneStreamPerGenerationAsync(BenchmarkClient client, int count, int runMs, CancellationToken cancellationToken)
    {
        using var submitting = new SemaphoreSlim(16);
        return await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            string id;
            await submitting.WaitAsync(cancellationToken);
            try
            {
                id = await client.SubmitAsync($"latency {i} [[run:{runMs}]]", cancellationToken);
            }
            finally
            {
                submitting.Release();
            }

            return await client.WatchAsync(id, null, cancellationToken);
        }));
    }

    private static async Task<List<string>> SubmitAllAsync(BenchmarkClient client, int count, string prompt, int runMs, CancellationToken cancellationToken)
    {
        using var submitting = new SemaphoreSlim(10);
        return [.. await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            await submitting.WaitAsync(cancellationToken);
            try
            {
                return await client.SubmitAsync($"{prompt} {i} [[run:{runMs}]]", cancellationToken);
            }
            finally
            {
                submitting.Release();
            }
        }))];
    }

    /// <summary>When the stand-in started the first webhook POST of each generation; waits until every one is recorded.</summary>
    private async Task<Dictionary<string, DateTimeOffset>> WebhookSendsAsync(IEnumerable<string> ids, CancellationToken cancellationToken)
    {
        var wanted = ids.ToHashSet(StringComparer.Ordinal);
        for (var attempt = 0; ; attempt++)
        {
            var sends = _fal!.State.WebhookAttempts.Where(a => wanted.Contains(a.RequestId))
                .GroupBy(a => a.RequestId, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => g.Min(a => a.SentAt), StringComparer.Ordinal);
            if (sends.Count == wanted.Count)
            {
                return sends;
            }

            if (attempt == 100)
            {
                throw new InvalidOperationException($"the stand-in recorded webhooks for only {sends.Count} of {wanted.Count} generations");
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    private async Task<string> MeasureAsync(IReadOnlyCollection<StreamOutcome> outcomes, CancellationToken cancellationToken)
    {
        var sends = await WebhookSendsAsync(outcomes.Select(o => o.Id).Distinct(), cancellationToken);
        var late = outcomes.Count(o => o.ConnectedAt > sends[o.Id]);
        var early = outcomes.Count(o => o.EndedAt < sends[o.Id]);
        var failed = outcomes.Count(o => o.Terminal != "completed");
        var latencies = outcomes.Where(o => o.ConnectedAt <= sends[o.Id]).Select(o => (o.EndedAt - sends[o.Id]).TotalMilliseconds).Order().ToList();
        if (latencies.Count == 0)
        {
            throw new InvalidOperationException("no stream was open when its webhook was sent");
        }

        string P(double q) => latencies[Math.Clamp((int)Math.Ceiling(q * latencies.Count) - 1, 0, latencies.Count - 1)].ToString("F1", CultureInfo.InvariantCulture);
        var notes = (late, early, failed) == (0, 0, 0) ? "" : $" [{late} opened after the webhook, {early} ended before it, {failed} not completed]";
        return $"p50 {P(0.50)} ms  p95 {P(0.95)} ms  p99 {P(0.99)} ms  max {P(1)} ms  (n={latencies.Count}){notes}";
    }

    /// <summary>The runtime's dotnet.gc.last_collection.heap.size (all generations), as the gateway's /metrics shows it.</summary>
    private static async Task<string> ManagedHeapAsync(HttpClient scraper, CancellationToken cancellationToken)
    {
        var text = await scraper.GetStringAsync(new Uri("/metrics", UriKind.Relative), cancellationToken);
        var samples = text.Split('\n')
            .Where(line => !line.StartsWith('#') && line.Split('{', ' ')[0].Contains("gc_last_collection_heap_size", StringComparison.Ordinal))
            .Select(line => double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture))
            .ToList();
        return samples.Count == 0 ? "n/a" : (samples.Sum() / (1024 * 1024)).ToString("F1", CultureInfo.InvariantCulture) + " MiB";
    }

    public void Kill()
    {
        _gateway?.Dispose();
        _redis?.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        _gateway?.Dispose();
        if (_fal is not null)
        {
            await _fal.DisposeAsync();
        }

        _redis?.Dispose();
    }
}
