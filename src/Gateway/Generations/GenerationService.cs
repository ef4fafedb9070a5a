using Gateway.Clients;
using Gateway.Hosting;
using Gateway.Upstream;
using Microsoft.Extensions.Options;

namespace Gateway.Generations;

/// <summary>A generation as seen now: the stored record, fal's live status while it runs, and its result once done.</summary>
internal sealed record GenerationSnapshot(GenerationRecord Record, FalStatus? Live);

/// <summary>Answers reads of a generation from the store, bringing pending ones up to date with fal; ends come through <see cref="GenerationCompleter"/>.</summary>
internal sealed class GenerationService(
    FalQueueClient fal,
    IGenerationStore store,
    GenerationReadCache cache,
    RequestCoalescer coalescer,
    GenerationCompleter completer,
    CompletionHub hub,
    GatewayMetrics metrics,
    IHostApplicationLifetime lifetime,
    IOptions<GenerationOptions> generationOptions,
    IImageLinks imageLinks,
    TimeProvider time)
{
    /// <summary>
    /// The caller's generation, or null when it does not exist or belongs to another client, or another user of the client: from the read cache when it
    /// has ended or was read within StatusCacheTtl (an end on any replica drops the running record), else from the store.
    /// </summary>
    public async ValueTask<GenerationRecord?> FindAsync(Owner owner, string id, CancellationToken cancellationToken)
    {
        GatewayMetrics.TagRequestId(id);
        var record = cache.Find(id) ?? await LoadAsync(id, cancellationToken);
        return record is not null && record.Client == owner.Client && record.User == owner.User ? record : null;
    }

    /// <summary>Whether the generation exists and is the caller's; the owner never changes, so a cached record of any age answers.</summary>
    public async ValueTask<bool> IsOwnedByAsync(Owner owner, string id, CancellationToken cancellationToken)
    {
        GatewayMetrics.TagRequestId(id);
        var record = cache.Find(id, anyAge: true) ?? await LoadAsync(id, cancellationToken);
        return record is not null && record.Client == owner.Client && record.User == owner.User;
    }

    /// <summary>The record as the store has it now (another replica may have ended it), or as read within StatusCacheTtl.</summary>
    public async ValueTask<GenerationRecord> ReloadAsync(GenerationRecord record, CancellationToken cancellationToken) =>
        record.IsTerminal ? record : cache.Find(record.Id) ?? await LoadAsync(record.Id, cancellationToken) ?? record;

    private async Task<GenerationRecord?> LoadAsync(string id, CancellationToken cancellationToken)
    {
        var stamp = cache.Stamp;
        var record = await store.GetAsync(id, cancellationToken);
        if (record is not null)
        {
            cache.Remember(record, stamp);
        }

        return record;
    }

    /// <summary>Brings a pending generation up to date with fal (status cached and coalesced per replica).</summary>
    public async Task<GenerationSnapshot> ObserveAsync(GenerationRecord record, bool logs, CancellationToken cancellationToken)
    {
        if (record.IsTerminal)
        {
            return new GenerationSnapshot(record, null);
        }

        var status = await coalescer.RunAsync(
            $"status:{record.Id}:{logs}", generationOptions.Value.StatusCacheTtl,
            static (ask, ct) => ask.Fal.GetStatusAsync(ask.StatusUrl, ask.Logs, ct), (Fal: fal, record.StatusUrl, Logs: logs), cancellationToken,
            cache: "status");
        if (status.Status == FalStatus.Completed)
        {
            record = await completer.EnsureCompletedAsync(record, status, cancellationToken);
            cache.Remember(record); // ended here or, found in the store, on another replica whose signal this one missed
        }

        return new GenerationSnapshot(record, status);
    }

    /// <summary>
    /// Waits up to <paramref name="wait"/> for the generation to end: woken at once by the end signal
    /// from any replica, and looking at fal (coalesced) now and then in case no signal comes.
    /// </summary>
    public async Task<GenerationSnapshot> WaitForEndAsync(GenerationRecord record, TimeSpan wait, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + wait;
        using var watch = hub.WatchFor(record.Id);
        var stopping = lifetime.ApplicationStopping;
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = stopping.Register(() => stopped.TrySetResult());
        while (true)
        {
            var snapshot = await ObserveAsync(await ReloadAsync(record, cancellationToken), logs: false, cancellationToken);
            var remaining = deadline - time.GetUtcNow();
            if (snapshot.Record.IsTerminal || remaining <= TimeSpan.Zero || stopping.IsCancellationRequested)
            {
                return snapshot; // a draining replica answers what it has rather than hold the shutdown
            }

            var nap = remaining < generationOptions.Value.EventStreamPollInterval ? remaining : generationOptions.Value.EventStreamPollInterval;
            await Task.WhenAny(watch.Ended, Task.Delay(nap, time, cancellationToken), stopped.Task);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>An ended generation's result: from the read cache when it is small and was seen, else from the store (then kept).</summary>
    public async ValueTask<StoredResult?> GetResultAsync(GenerationRecord terminal, CancellationToken cancellationToken)
    {
        metrics.CacheLookup("result", hit: true);
        if (cache.FindResult(terminal.Id) is { } cached)
        {
            return cached;
        }

        var result = await store.GetResultAsync(terminal.Id, cancellationToken);
        if (result is not null)
        {
            cache.RememberResult(terminal, result);
        }

        return result;
    }

    /// <summary>
    /// The images the history shows for a completed generation: kept on its record since it completed; read from its stored
    /// result for a record that completed before records kept them.
    /// </summary>
    public async Task<IReadOnlyList<RecordedImage>?> GetHistoryImagesAsync(GenerationRecord record, CancellationToken cancellationToken)
    {
        if (record.Status != GenerationStatus.Completed || record.Images is not null)
        {
            return record.Images;
        }

        return await store.GetResultAsync(record.Id, cancellationToken) is { } stored ? ResultImages.Summarize(stored.Document) : null;
    }

    public Task<byte[]?> GetBlobAsync(string id, int index, CancellationToken cancellationToken) =>
        store.GetBlobAsync(id, index, cancellationToken);

    /// <summary>What writing the stored result of <paramref name="record"/> for <paramref name="request"/>'s caller needs.</summary>
    public ResultParts PartsOf(GenerationRecord record, HttpRequest request) =>
        new((i, ct) => store.GetBlobAsync(record.Id, i, ct), imageLinks.For(request, record));

    public async Task<FalCancelOutcome> CancelAsync(GenerationRecord record, CancellationToken cancellationToken) =>
        record.IsTerminal ? FalCancelOutcome.AlreadyCompleted : await fal.CancelAsync(record.CancelUrl, cancellationToken);
}
