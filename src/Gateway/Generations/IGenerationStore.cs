namespace Gateway.Generations;

/// <summary>Where generations, their owners and their terminal results live: Redis, or memory for one replica.</summary>
internal interface IGenerationStore
{
    /// <summary>False for the in-memory store: state is lost on restart and not shared between replicas.</summary>
    bool IsShared { get; }

    Task CreateAsync(GenerationRecord record, CancellationToken cancellationToken);

    Task<GenerationRecord?> GetAsync(string id, CancellationToken cancellationToken);

    /// <summary>Stores the terminal record and its result at once; false when the generation had already ended.</summary>
    Task<bool> CompleteAsync(GenerationRecord terminal, StoredResult? result, CancellationToken cancellationToken);

    Task<StoredResult?> GetResultAsync(string id, CancellationToken cancellationToken);

    Task<byte[]?> GetBlobAsync(string id, int index, CancellationToken cancellationToken);

    /// <summary>A blob read piece by piece (a sync_mode image can be tens of MB); null when it is not there.</summary>
    Task<Stream?> OpenBlobAsync(string id, int index, CancellationToken cancellationToken);

    /// <summary>
    /// Changes an ended generation's record (and, when given, its result, dropping the blobs it no longer names), keeping their
    /// expiry: <paramref name="change"/> sees the record as stored and returns null to leave it. False when the record is gone
    /// or <paramref name="change"/> declined; a write that raced another is retried with the record as it then is.
    /// </summary>
    Task<bool> UpdateEndedAsync(
        string id, Func<GenerationRecord, GenerationRecord?> change, StoredResult? result, IReadOnlyCollection<int> dropBlobs, CancellationToken cancellationToken);

    /// <summary>A short exclusive lease (e.g. "fetch the result of X"), so only one replica does a piece of work.</summary>
    Task<bool> TryAcquireLeaseAsync(string purpose, string id, string owner, TimeSpan ttl);

    Task ReleaseLeaseAsync(string purpose, string id, string owner);

    Task<bool> IsHealthyAsync(CancellationToken cancellationToken);

    /// <summary>When the reconciler should next look at an unfinished generation (replaces an earlier time).</summary>
    Task SchedulePendingAsync(string id, DateTimeOffset dueAt);

    Task RemovePendingAsync(string id);

    /// <summary>Unfinished generations whose time to be looked at has come, oldest first.</summary>
    Task<IReadOnlyList<string>> GetDuePendingAsync(DateTimeOffset now, int max);

    Task<long> CountPendingAsync();

    /// <summary>When the generation is next due a look, or null when it is not scheduled.</summary>
    Task<DateTimeOffset?> GetPendingDueAsync(string id);
}
