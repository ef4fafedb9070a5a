using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace Gateway.Generations;

/// <summary>The store when no Redis is configured: one replica only, lost on restart (announced at start).</summary>
internal sealed class InMemoryGenerationStore(IOptions<GenerationOptions> options, TimeProvider time) : IGenerationStore
{
    private readonly ConcurrentDictionary<string, Entry> _entries = new();
    private readonly ConcurrentDictionary<string, (string Owner, DateTimeOffset Expires)> _leases = new();
    private readonly ConcurrentDictionary<string, DateTimeOffset> _pending = new();
    private readonly Lock _gate = new();
    private long _writes;

    private sealed record Entry(GenerationRecord Record, StoredResult? Result, DateTimeOffset Expires);

    public bool IsShared => false;

    public Task CreateAsync(GenerationRecord record, CancellationToken cancellationToken)
    {
        _entries[record.Id] = new Entry(record, null, time.GetUtcNow() + options.Value.ResultTtl);
        SweepNowAndThen();
        return Task.CompletedTask;
    }

    public Task<GenerationRecord?> GetAsync(string id, CancellationToken cancellationToken) =>
        Task.FromResult(Live(id)?.Record);

    public Task<bool> CompleteAsync(GenerationRecord terminal, StoredResult? result, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (Live(terminal.Id) is { Record.IsTerminal: true })
            {
                return Task.FromResult(false);
            }

            _entries[terminal.Id] = new Entry(terminal, result, time.GetUtcNow() + options.Value.ResultTtl);
            return Task.FromResult(true);
        }
    }

    public Task<StoredResult?> GetResultAsync(string id, CancellationToken cancellationToken) =>
        Task.FromResult(Live(id)?.Result);

    public Task<byte[]?> GetBlobAsync(string id, int index, CancellationToken cancellationToken) =>
        Task.FromResult(Live(id)?.Result?.Blobs is { } blobs && index < blobs.Count ? blobs[index] : null);

    public Task<Stream?> OpenBlobAsync(string id, int index, CancellationToken cancellationToken) =>
        Task.FromResult<Stream?>(Live(id)?.Result?.Blobs is { } blobs && index < blobs.Count && blobs[index].Length > 0
            ? new MemoryStream(blobs[index], writable: false)
            : null);

    public Task<bool> UpdateEndedAsync(
        string id, Func<GenerationRecord, GenerationRecord?> change, StoredResult? result, IReadOnlyCollection<int> dropBlobs, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (Live(id) is not { Record.IsTerminal: true } entry || change(entry.Record) is not { } changed)
            {
                return Task.FromResult(false);
            }

            if (result is not null)
            {
                // Indexes stay as they are (placeholders name them); a dropped blob's bytes are let go.
                result = result with { Blobs = [.. result.Blobs.Select((blob, i) => dropBlobs.Contains(i) ? [] : blob)] };
            }

            _entries[id] = entry with { Record = changed, Result = result ?? entry.Result };
            return Task.FromResult(true);
        }
    }

    public Task<bool> TryAcquireLeaseAsync(string purpose, string id, string owner, TimeSpan ttl)
    {
        var key = purpose + ":" + id;
        var now = time.GetUtcNow();
        lock (_gate)
        {
            if (_leases.TryGetValue(key, out var lease) && lease.Expires > now)
            {
                return Task.FromResult(false);
            }

            _leases[key] = (owner, now + ttl);
            return Task.FromResult(true);
        }
    }

    public Task ReleaseLeaseAsync(string purpose, string id, string owner)
    {
        var key = purpose + ":" + id;
        lock (_gate)
        {
            if (_leases.TryGetValue(key, out var lease) && lease.Owner == owner)
            {
                _leases.TryRemove(key, out _);
            }
        }

        return Task.CompletedTask;
    }

    public Task<bool> IsHealthyAsync(CancellationToken cancellationToken) => Task.FromResult(true);

    public Task SchedulePendingAsync(string id, DateTimeOffset dueAt)
    {
        _pending[id] = dueAt;
        return Task.CompletedTask;
    }

    public Task RemovePendingAsync(string id)
    {
        _pending.TryRemove(id, out _);
        return Task.CompletedTask;
    }

    public Task<long> CountPendingAsync() => Task.FromResult((long)_pending.Count);

    public Task<DateTimeOffset?> GetPendingDueAsync(string id) =>
        Task.FromResult(_pending.TryGetValue(id, out var due) ? due : (DateTimeOffset?)null);

    public Task<IReadOnlyList<string>> GetDuePendingAsync(DateTimeOffset now, int max) =>
        Task.FromResult<IReadOnlyList<string>>(_pending.Where(p => p.Value <= now).OrderBy(p => p.Value).Take(max).Select(p => p.Key).ToList());

    private Entry? Live(string id) =>
        _entries.TryGetValue(id, out var entry) && entry.Expires > time.GetUtcNow() ? entry : null;

    private void SweepNowAndThen()
    {
        if (Interlocked.Increment(ref _writes) % 1024 != 0)
        {
            return;
        }

        var now = time.GetUtcNow();
        foreach (var (id, entry) in _entries)
        {
            if (entry.Expires <= now)
            {
                _entries.TryRemove(id, out _);
            }
        }
    }
}
