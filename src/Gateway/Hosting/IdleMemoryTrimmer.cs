using System.Runtime;

namespace Gateway.Hosting;

/// <summary>
/// Gives memory back once a burst is over (issue 9, point 10). The GC collects when the application
/// allocates; a replica that goes quiet after a burst of multi-megabyte bodies allocates almost nothing,
/// so no collection runs and its RSS stays near the burst's peak (measured: 1.6–2.2× idle a minute later,
/// most of the managed heap dead objects and buffers the shared array pools kept). When the replica has
/// allocated a lot since the last trim and then allocates little for one <see cref="CheckInterval"/>, this
/// runs an aggressive collection (every generation compacted, the large-object heap included, free memory
/// decommitted), and a few more while it stays idle: the pools drop a buffer only when a full collection
/// finds it unused for a while, and what they drop is freed by the collection after. It runs only while
/// the replica is idle, so its pauses (milliseconds on a heap this size) land on no request of note.
/// </summary>
internal sealed partial class IdleMemoryTrimmer(ILogger<IdleMemoryTrimmer> logger) : BackgroundService
{
    internal static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // The wall clock on purpose: idleness is about what the process does, not the application's clock.
        using var timer = new PeriodicTimer(CheckInterval);
        var schedule = new TrimSchedule(GC.GetTotalAllocatedBytes());
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (schedule.ShouldTrim(GC.GetTotalAllocatedBytes()))
            {
                Trim();
                schedule.Trimmed(GC.GetTotalAllocatedBytes());
            }
        }
    }

    private void Trim()
    {
        var before = GC.GetGCMemoryInfo().HeapSizeBytes;
        var started = TimeProvider.System.GetTimestamp();
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        LogTrimmed(logger, before / (1024 * 1024), GC.GetGCMemoryInfo().HeapSizeBytes / (1024 * 1024),
            (long)TimeProvider.System.GetElapsedTime(started).TotalMilliseconds);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Idle after a burst: compacted the managed heap from {BeforeMiB} MiB to {AfterMiB} MiB in {Milliseconds} ms")]
    private static partial void LogTrimmed(ILogger logger, long beforeMiB, long afterMiB, long milliseconds);
}

/// <summary>When <see cref="IdleMemoryTrimmer"/> collects, from the bytes the process has allocated so far, read once per interval.</summary>
internal sealed class TrimSchedule(long allocated)
{
    /// <summary>Allocated since the last trim before another is worth it.</summary>
    internal const long BurstBytes = 64L * 1024 * 1024;

    /// <summary>At most this much allocated during one interval counts as idle (health probes and scrapes allocate a little).</summary>
    internal const long IdleBytesPerInterval = 4L * 1024 * 1024;

    /// <summary>
    /// Collections after the first while the replica stays idle, <see cref="FollowUpIntervals"/> intervals apart: a
    /// thread's pooled buffer is dropped after about 30 s unused, the shared stacks' after 60 s, both only by a full collection.
    /// </summary>
    internal const int FollowUps = 3;
    internal const int FollowUpIntervals = 4;

    private long _atLastTrim = allocated;
    private long _atLastCheck = allocated;
    private int _followUps;
    private int _intervalsToFollowUp;

    /// <summary>Whether to collect now; call once per interval.</summary>
    public bool ShouldTrim(long allocated)
    {
        var idle = allocated - _atLastCheck <= IdleBytesPerInterval;
        _atLastCheck = allocated;
        if (!idle)
        {
            return false;
        }

        if (allocated - _atLastTrim >= BurstBytes)
        {
            _followUps = FollowUps;
            _intervalsToFollowUp = FollowUpIntervals;
            return true;
        }

        if (_followUps > 0 && --_intervalsToFollowUp <= 0)
        {
            _followUps--;
            _intervalsToFollowUp = FollowUpIntervals;
            return true;
        }

        return false;
    }

    /// <summary>After a collection: what it allocated itself is not the application's burst.</summary>
    public void Trimmed(long allocated)
    {
        _atLastTrim = allocated;
        _atLastCheck = allocated;
    }
}
