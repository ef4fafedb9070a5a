using System.Diagnostics.Tracing;

namespace Gateway.Tests.Infrastructure;

/// <summary>
/// The runtime's allocation events for this process while it watches: every object of 100 KB or more shows up as a
/// GC AllocationTick event with its size, so the largest one allocated is known; and the bytes allocated in all.
/// For a measurement to mean something nothing else may run meanwhile (see <see cref="SerialMeasurements"/>).
/// </summary>
public sealed class AllocationWatch : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private long _allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
    private long _largest;
    private string? _largestType;
    private long _largeCount;
    private volatile bool _watching = true;

    public long LargestObjectBytes => Interlocked.Read(ref _largest);

    public string? LargestObjectType => _largestType;

    /// <summary>Objects of 85,000 bytes or more (the large-object heap) seen while watching.</summary>
    public long LargeObjects => Interlocked.Read(ref _largeCount);

    public long AllocatedBytes { get; private set; }

    /// <summary>
    /// Allocates an object of <paramref name="probeBytes"/> and waits until the runtime's event about it arrives (proof that
    /// the watch sees large objects), then starts counting afresh.
    /// </summary>
    public async Task CalibrateAsync(int probeBytes, CancellationToken cancellationToken)
    {
        var probe = new byte[probeBytes];
        GC.KeepAlive(probe);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (LargestObjectBytes < probeBytes)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the runtime reported no allocation of {probeBytes} bytes: the watch sees nothing");
            await Task.Delay(20, cancellationToken);
        }

        Interlocked.Exchange(ref _largest, 0);
        Interlocked.Exchange(ref _largeCount, 0);
        _largestType = null;
        _allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
    }

    /// <summary>Stops watching and takes the total.</summary>
    public void Stop()
    {
        _watching = false;
        AllocatedBytes = GC.GetTotalAllocatedBytes(precise: true) - _allocatedBefore;
    }

    public override string ToString() =>
        $"largest object {LargestObjectBytes / 1024.0:F0} KiB ({LargestObjectType}), {LargeObjects} large objects, {AllocatedBytes / 1048576.0:F1} MiB allocated in all";

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(eventSource, EventLevel.Verbose, GcKeyword);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (!_watching || eventData.EventName is null || !eventData.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || eventData.Payload is null)
        {
            return;
        }

        var index = eventData.PayloadNames?.IndexOf("ObjectSize") ?? -1;
        if (index < 0 || eventData.Payload[index] is not { } size)
        {
            return;
        }

        var bytes = Convert.ToInt64(size, System.Globalization.CultureInfo.InvariantCulture);
        if (bytes >= 85_000)
        {
            Interlocked.Increment(ref _largeCount);
        }

        long current;
        while (bytes > (current = Interlocked.Read(ref _largest)))
        {
            if (Interlocked.CompareExchange(ref _largest, bytes, current) == current)
            {
                var typeIndex = eventData.PayloadNames!.IndexOf("TypeName");
                _largestType = typeIndex >= 0 ? eventData.Payload[typeIndex] as string : null;
                break;
            }
        }
    }
}

/// <summary>Tests that measure the whole process (allocations), run alone after every other test.</summary>
[CollectionDefinition(nameof(SerialMeasurements), DisableParallelization = true)]
public sealed class SerialMeasurements;
