using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace Gateway.Generations;

/// <summary>
/// What reads need of a generation, kept in this replica's memory so that polls do not go to Redis: the record of an
/// ended generation and its result (both immutable once stored) until they expire from the store, and the record of a
/// running one, which changes only when it ends, for <c>Gateway__StatusCacheTtl</c> (its owner, which never changes,
/// for as long as it is kept). Filled on first read and when this replica ends a generation; the end signal
/// (<see cref="CompletionHub"/>) drops running records on every replica. Bounded by <c>Gateway__ReadCacheMaxBytes</c>,
/// least recently used first out; results above <c>Gateway__InlineResultMaxBytes</c> (kept in Redis as separate
/// images) are never cached.
/// </summary>
internal sealed class GenerationReadCache(IOptions<GenerationOptions> options, TimeProvider time)
{
    private const long EntryOverheadBytes = 400; // the entry, the record and its strings' headers, the dictionary node

    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Lock _evicting = new();
    private readonly GenerationOptions _options = options.Value;
    private long _bytes;
    private long _endSignals;

    private sealed class Entry(GenerationRecord record, StoredResult? result, long readAt, DateTimeOffset expiresAt)
    {
        public GenerationRecord Record { get; } = record;
        public StoredResult? Result { get; } = result;

        /// <summary>When the record was read from the store (a timestamp of the TimeProvider).</summary>
        public long ReadAt { get; } = readAt;

        /// <summary>When the store lets it go (its TTL), so the cache never outlives it.</summary>
        public DateTimeOffset ExpiresAt { get; } = expiresAt;

        public long Size { get; } = EntryOverheadBytes + 2L * (record.Id.Length + record.Client.Length + record.Model.Length
            + record.StatusUrl.Length + record.ResponseUrl.Length + record.CancelUrl.Length) + (result?.Document.Length ?? 0);

        public long LastUsed;
    }

    /// <summary>Bytes held (an estimate: the records' strings and the results' documents, plus a fixed overhead each).</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    public int Count => _entries.Count;

    /// <summary>Taken before a store read; <see cref="Remember"/> then refuses a running record if an end was signalled meanwhile.</summary>
    public long Stamp => Interlocked.Read(ref _endSignals);

    /// <summary>
    /// The generation's record: an ended one while it is kept; a running one only while it was read within
    /// <c>StatusCacheTtl</c>, or however long ago with <paramref name="anyAge"/> (for the owner, which never changes).
    /// </summary>
    public GenerationRecord? Find(string id, bool anyAge = false)
    {
        if (!_entries.TryGetValue(id, out var entry))
        {
            return null;
        }

        if (time.GetUtcNow() >= entry.ExpiresAt)
        {
            Drop(id, entry);
            return null;
        }

        if (!IsFinal(entry.Record) && !anyAge && time.GetElapsedTime(entry.ReadAt) >= _options.StatusCacheTtl)
        {
            return null;
        }

        entry.LastUsed = time.GetTimestamp();
        return entry.Record;
    }

    /// <summary>The stored result of an ended generation, when it is small enough to be kept here and was seen.</summary>
    public StoredResult? FindResult(string id) =>
        _entries.TryGetValue(id, out var entry) && entry.Result is { } result && time.GetUtcNow() < entry.ExpiresAt ? result : null;

    /// <summary>
    /// Keeps a record read from the store now (or just written by this replica). An ended record is never replaced by a
    /// running one; a running one read before an end signal (<paramref name="stamp"/>) is not kept, since it may be stale.
    /// </summary>
    public void Remember(GenerationRecord record, long? stamp = null)
    {
        if (_options.ReadCacheMaxBytes == 0 || (!IsFinal(record) && stamp is { } taken && taken != Stamp))
        {
            return;
        }

        while (true)
        {
            if (!_entries.TryGetValue(record.Id, out var current))
            {
                if (Add(record.Id, NewEntry(record, null)))
                {
                    return;
                }

                continue;
            }

            if (IsFinal(current.Record) && !IsFinal(record))
            {
                return; // an end is final: a late read of the running record changes nothing
            }

            if (Replace(record.Id, current, NewEntry(record, IsFinal(current.Record) && IsFinal(record) ? current.Result : null)))
            {
                return;
            }
        }
    }

    /// <summary>Keeps an ended generation's result beside its record, unless it is one kept in Redis as separate images.</summary>
    public void RememberResult(GenerationRecord terminal, StoredResult result)
    {
        if (_options.ReadCacheMaxBytes == 0 || !IsFinal(terminal) || result.HasBlobs || result.Document.Length > _options.InlineResultMaxBytes)
        {
            return;
        }

        while (true)
        {
            var current = _entries.GetValueOrDefault(terminal.Id);
            var entry = NewEntry(current?.Record is { } known && IsFinal(known) ? known : terminal, result);
            if (current is null ? Add(terminal.Id, entry) : Replace(terminal.Id, current, entry))
            {
                return;
            }
        }
    }

    /// <summary>The generation ended, or its images were copied (on any replica): a record kept here that was not final is stale now.</summary>
    public void Ended(string id)
    {
        Interlocked.Increment(ref _endSignals);
        if (_entries.TryGetValue(id, out var entry) && !IsFinal(entry.Record))
        {
            Drop(id, entry);
        }
    }

    /// <summary>
    /// Whether the record will not change again: ended, and its images not waiting to be copied into the image store
    /// (the copy rewrites the record and the result once more, then signals like an end). Until then it is treated
    /// like a running record: kept for StatusCacheTtl, dropped by the signal, its result not kept.
    /// </summary>
    private static bool IsFinal(GenerationRecord record) => record.IsTerminal && record.ImageCopy != ImageCopyState.Pending;

    private Entry NewEntry(GenerationRecord record, StoredResult? result)
    {
        // The store keeps a record for ResultTtl from its last write: creation while it runs, its end once ended.
        var written = record.IsTerminal ? record.CompletedAt ?? time.GetUtcNow() : record.CreatedAt;
        return new Entry(record, result, time.GetTimestamp(), written + _options.ResultTtl) { LastUsed = time.GetTimestamp() };
    }

    private bool Add(string id, Entry entry)
    {
        if (!_entries.TryAdd(id, entry))
        {
            return false;
        }

        Grow(entry.Size);
        return true;
    }

    private bool Replace(string id, Entry current, Entry entry)
    {
        if (!_entries.TryUpdate(id, entry, current))
        {
            return false;
        }

        Grow(entry.Size - current.Size);
        return true;
    }

    private void Drop(string id, Entry entry)
    {
        if (_entries.TryRemove(KeyValuePair.Create(id, entry)))
        {
            Interlocked.Add(ref _bytes, -entry.Size);
        }
    }

    /// <summary>Over the budget, the least recently used entries go until a tenth of it is free, so eviction is not paid per insert.</summary>
    private void Grow(long delta)
    {
        var max = _options.ReadCacheMaxBytes;
        if (Interlocked.Add(ref _bytes, delta) <= max || !_evicting.TryEnter())
        {
            return;
        }

        try
        {
            var target = max - max / 10;
            foreach (var (id, entry) in _entries.OrderBy(e => e.Value.LastUsed).ToList())
            {
                if (Interlocked.Read(ref _bytes) <= target)
                {
                    break;
                }

                Drop(id, entry);
            }
        }
        finally
        {
            _evicting.Exit();
        }
    }
}
