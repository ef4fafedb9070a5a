using System.Diagnostics;
using System.Globalization;
using Gateway.Tests.Process;

namespace Gateway.Benchmarks;

/// <summary>How the gateway process is started: environment variables over what its runtimeconfig.json says.</summary>
internal sealed record GcConfiguration(string Name, string Description, IReadOnlyDictionary<string, string> Environment)
{
    /// <summary>What Gateway.csproj sets: what the container runs.</summary>
    public static GcConfiguration Chosen { get; } = new("chosen", "as built (Gateway.csproj)", new Dictionary<string, string>());

    /// <summary>Before issue 9: the Web SDK's default, server GC, with DATAS (the default for server GC since .NET 9).</summary>
    public static GcConfiguration Old { get; } = new("old", "server GC + DATAS (Web SDK default)", new Dictionary<string, string>
    {
        ["DOTNET_gcServer"] = "1",
        ["DOTNET_gcConcurrent"] = "1",
        ["DOTNET_GCDynamicAdaptationMode"] = "1",
        ["DOTNET_GCConserveMemory"] = "0",
    });

    /// <summary>Chosen and old, and the other candidates measured before choosing (<c>memory=all</c>).</summary>
    public static IReadOnlyList<GcConfiguration> All { get; } =
    [
        Chosen,
        Old,
        new("server-classic", "server GC, DATAS off (.NET 8 default)", new Dictionary<string, string>
        {
            ["DOTNET_gcServer"] = "1", ["DOTNET_gcConcurrent"] = "1", ["DOTNET_GCDynamicAdaptationMode"] = "0", ["DOTNET_GCConserveMemory"] = "0",
        }),
        new("server-conserve", "server GC + DATAS + ConserveMemory 7", new Dictionary<string, string>
        {
            ["DOTNET_gcServer"] = "1", ["DOTNET_gcConcurrent"] = "1", ["DOTNET_GCDynamicAdaptationMode"] = "1", ["DOTNET_GCConserveMemory"] = "7",
        }),
        new("pool-capped", "as built, 1 pooled array per size and core", new Dictionary<string, string>
        {
            ["DOTNET_SYSTEM_BUFFERS_SHAREDARRAYPOOL_MAXARRAYSPERPARTITION"] = "1",
        }),
        new("workstation", "workstation GC, ConserveMemory 0", new Dictionary<string, string>
        {
            ["DOTNET_gcServer"] = "0", ["DOTNET_gcConcurrent"] = "1", ["DOTNET_GCConserveMemory"] = "0",
        }),
    ];
}

/// <summary>One configuration's figures: RSS when idle, at its peak under load, and in the minute after.</summary>
internal sealed record MemoryFigures(
    GcConfiguration Configuration,
    string GcSeen,
    long ReadyKiB,
    long IdleKiB,
    long PeakKiB,
    long AfterKiB,
    int? BackWithinSeconds,
    IReadOnlyList<(int Second, long KiB)> Trace,
    int Sent,
    TimeSpan LoadTime,
    IReadOnlyDictionary<string, int> Outcomes,
    string IdleHeap,
    string AfterHeap)
{
    public double Ratio => AfterKiB / (double)IdleKiB;
}

/// <summary>
/// Issue 9, point 10: the gateway's RSS idle, under a few thousand mixed requests, and for a minute after.
/// The target: back within 1.5× of idle within that minute.
/// </summary>
internal static class MemoryAfterLoad
{
    public const int Requests = 3_000;
    public const int Concurrency = 16;
    public const double Target = 1.5;
    public static readonly TimeSpan LoadDeadline = TimeSpan.FromSeconds(150);
    public static readonly TimeSpan Watch = TimeSpan.FromSeconds(60);
    private static readonly int[] TracedSeconds = [0, 5, 10, 20, 30, 45, 60];

    public static async Task<MemoryFigures> MeasureAsync(
        ProcessGateway gateway, string clientKey, GcConfiguration configuration, Func<Task<string>> managedHeap, CancellationToken cancellationToken)
    {
        var ready = gateway.Memory().RssKiB;
        using var load = new MixedLoad(gateway.BaseAddress, clientKey, Concurrency);

        // Every kind of request a few times first, two at a time: JIT, pools and caches belong to the idle figure,
        // not to the load's; few enough that the heap does not grow for them.
        await load.RunAsync(60, 2, seed: 1, LoadDeadline, cancellationToken);
        load.TakeOutcomes();
        await Task.Delay(TimeSpan.FromSeconds(5), cancellationToken);
        var idle = gateway.Memory().RssKiB;
        var idleHeap = await managedHeap();

        var clock = Stopwatch.StartNew();
        var sent = await load.RunAsync(Requests, Concurrency, seed: 9, LoadDeadline, cancellationToken);
        var loadTime = clock.Elapsed;
        var outcomes = load.TakeOutcomes();

        int? backWithin = null;
        var trace = new List<(int, long)>();
        var rss = 0L;
        for (var second = 0; second <= (int)Watch.TotalSeconds; second++)
        {
            rss = gateway.Memory().RssKiB;
            backWithin ??= rss <= idle * Target ? second : null;
            if (TracedSeconds.Contains(second))
            {
                trace.Add((second, rss));
            }

            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
        }

        var figures = new MemoryFigures(configuration, GcSeen(gateway.ProcessId), ready, idle, gateway.Memory().PeakRssKiB, rss, backWithin, trace,
            sent, loadTime, outcomes, idleHeap, await managedHeap());
        if (await HeapDumpAsync(gateway.ProcessId, configuration.Name, cancellationToken))
        {
            for (var second = 0; second <= 10; second += 5)
            {
                Console.WriteLine($"after the snapshot's full collection, +{second} s: RSS {gateway.Memory().RssKiB / 1024} MiB, managed heap {await managedHeap()}");
                await Task.Delay(TimeSpan.FromSeconds(5), cancellationToken);
            }
        }

        return figures;
    }

    /// <summary>
    /// With BENCH_HEAP_DUMP_DIR set, a heap dump once the minute is over (dotnet-dump on PATH or in
    /// ~/.dotnet/tools), to see what the RSS that stayed is made of: <c>dotnet-dump analyze FILE</c>, then
    /// <c>gcheapstat</c> and <c>dumpheap -stat -min 85000</c>. Taken after the figures, since it touches the heap.
    /// </summary>
    private static async Task<bool> HeapDumpAsync(int processId, string name, CancellationToken cancellationToken)
    {
        if (Environment.GetEnvironmentVariable("BENCH_HEAP_DUMP_DIR") is not { Length: > 0 } directory)
        {
            return false;
        }

        var tool = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dotnet", "tools", "dotnet-dump");
        var output = Path.Combine(directory, $"{name}-after.dump");
        using var process = Process.Start(new ProcessStartInfo(File.Exists(tool) ? tool : "dotnet-dump",
            ["collect", "--type", "Heap", "-p", processId.ToString(CultureInfo.InvariantCulture), "-o", output]) { RedirectStandardOutput = true })!;
        await process.WaitForExitAsync(cancellationToken);
        Console.WriteLine($"heap snapshot: {output} (dotnet-dump analyze {output})");
        return true;
    }

    public static string Report(IReadOnlyList<MemoryFigures> figures)
    {
        static string MiB(long kib) => (kib / 1024.0).ToString("F0", CultureInfo.InvariantCulture);
        var lines = new List<string>
        {
            "",
            "===================== gateway memory after load (VmRSS, MiB) =====================",
            $"load: {Requests:N0} mixed requests, {Concurrency} at a time (submits, reads, edits with inline images, uploads,",
            "proxied submits, malformed / oversized / unauthenticated / unknown-id requests); then RSS every second for 60 s",
            "",
            $"{"configuration",-44} {"GC seen",-16} {"ready",6} {"idle",6} {"peak",6} {"+60 s",6} {"+60s/idle",9}  ≤{Target}× idle after",
        };
        foreach (var f in figures)
        {
            lines.Add($"{f.Configuration.Name + ": " + f.Configuration.Description,-44} {f.GcSeen,-16} {MiB(f.ReadyKiB),6} {MiB(f.IdleKiB),6} {MiB(f.PeakKiB),6} "
                + $"{MiB(f.AfterKiB),6} {f.Ratio.ToString("F2", CultureInfo.InvariantCulture) + "×",9}  "
                + (f.BackWithinSeconds is { } s ? $"{s} s" : "not within 60 s"));
        }

        lines.Add("");
        foreach (var f in figures)
        {
            lines.Add($"{f.Configuration.Name}: {f.Sent:N0} sent in {f.LoadTime.TotalSeconds:F0} s; answers "
                + string.Join(", ", f.Outcomes.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Key}×{o.Value}"))
                + $"; managed heap idle {f.IdleHeap}, +60 s {f.AfterHeap}");
            lines.Add($"  RSS after load: " + string.Join("  ", f.Trace.Select(t => $"{t.Second} s {MiB(t.KiB)}")));
        }

        lines.Add("==================================================================================");
        return string.Join('\n', lines);
    }

    /// <summary>Which GC the process runs, from its thread names: server GC has one ".NET Server GC" thread per heap.</summary>
    private static string GcSeen(int pid)
    {
        var names = Directory.EnumerateDirectories($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/task")
            .Select(task => File.ReadAllText(Path.Combine(task, "comm")).Trim())
            .ToList();
        var server = names.Count(n => n == ".NET Server GC");
        return (server > 0 ? $"server ×{server}" : "workstation") + (names.Contains(".NET BGC") ? ", BGC" : "");
    }
}
