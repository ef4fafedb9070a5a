using System.Text.Json;
using Gateway.Hosting;
using Gateway.Upstream;
using Microsoft.Extensions.Options;

namespace Gateway.Generations;

/// <summary>
/// Ends a generation exactly once, whoever learns of it first (webhook, a read that polls fal, the
/// proxy or the reconciler): stores the terminal status and result, then tells the listeners.
/// </summary>
internal sealed partial class GenerationCompleter(
    FalQueueClient fal,
    IGenerationStore store,
    GenerationReadCache cache,
    RequestCoalescer coalescer,
    GatewayMetrics metrics,
    IOptions<GenerationOptions> generationOptions,
    IEnumerable<IGenerationListener> listeners,
    TimeProvider time,
    ILogger<GenerationCompleter> logger)
{
    private static readonly TimeSpan ResultLease = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Ends a generation from fal's (verified) webhook. A duplicate delivery changes nothing; a payload
    /// fal could not send is fetched from fal once instead.
    /// </summary>
    public async Task<GenerationRecord> CompleteFromWebhookAsync(
        GenerationRecord record, string? status, ReadOnlyMemory<byte>? payload, string? error, string? payloadError, CancellationToken cancellationToken)
    {
        if (record.IsTerminal)
        {
            return record;
        }

        if (status == "OK" && payload is { } output)
        {
            var result = StoredResult.Encode(output.ToArray(), generationOptions.Value.InlineResultMaxBytes);
            LogCompleted(logger, record.Id, output.Length);
            return await EndAsync(Completed(record, output), result, cancellationToken);
        }

        if (status == "ERROR" && (payload is not null || error is not null))
        {
            return await EndAsync(Failed(record, FalErrorParser.FromWebhook(payload, error, payloadError)), null, cancellationToken);
        }

        // No usable payload (payload_error, or null): the result is fetched from fal once.
        return await EnsureCompletedAsync(record, new FalStatus(FalStatus.Completed, null, null, null, null), cancellationToken);
    }

    /// <summary>Fetches and stores the terminal result once: coalesced on this replica, leased across replicas.</summary>
    public Task<GenerationRecord> EnsureCompletedAsync(GenerationRecord record, FalStatus status, CancellationToken cancellationToken) =>
        coalescer.RunAsync($"complete:{record.Id}", TimeSpan.Zero, ct => CompleteOnceAsync(record, status, ct), cancellationToken).AsTask();

    private async Task<GenerationRecord> CompleteOnceAsync(GenerationRecord record, FalStatus status, CancellationToken cancellationToken)
    {
        var owner = Guid.NewGuid().ToString("N");
        var deadline = time.GetUtcNow() + ResultLease;
        while (true)
        {
            var current = await store.GetAsync(record.Id, cancellationToken) ?? record;
            if (current.IsTerminal)
            {
                return current;
            }

            if (await store.TryAcquireLeaseAsync("result", record.Id, owner, ResultLease))
            {
                try
                {
                    current = await store.GetAsync(record.Id, cancellationToken) ?? record;
                    if (current.IsTerminal)
                    {
                        return current;
                    }

                    var (terminal, result) = await FetchOutcomeAsync(current, status, cancellationToken);
                    return await EndAsync(terminal, result, cancellationToken);
                }
                finally
                {
                    await store.ReleaseLeaseAsync("result", record.Id, owner);
                }
            }

            if (time.GetUtcNow() > deadline)
            {
                throw new FalUpstreamException(new FalFailure(FalFailureKind.Timeout, null,
                    "Another replica is still fetching this generation's result; try again shortly."));
            }

            // Another replica holds the lease and is fetching; its write will show up in the store.
            await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken);
        }
    }

    /// <summary>
    /// Stores a terminal outcome; the one writer that ends the generation keeps it in the read cache (so this replica
    /// never reads it back from Redis) and tells the listeners, whose end signal drops the running record elsewhere.
    /// </summary>
    private async Task<GenerationRecord> EndAsync(GenerationRecord terminal, StoredResult? result, CancellationToken cancellationToken)
    {
        foreach (var listener in listeners)
        {
            terminal = await listener.OnEndingAsync(terminal, cancellationToken);
        }

        if (!await store.CompleteAsync(terminal, result, cancellationToken))
        {
            return await store.GetAsync(terminal.Id, cancellationToken) ?? terminal;
        }

        cache.Remember(terminal);
        if (result is not null)
        {
            cache.RememberResult(terminal, result);
        }

        foreach (var listener in listeners)
        {
            await listener.OnEndedAsync(terminal, cancellationToken);
        }

        return terminal;
    }

    private async Task<(GenerationRecord Terminal, StoredResult? Result)> FetchOutcomeAsync(
        GenerationRecord record, FalStatus status, CancellationToken cancellationToken)
    {
        FalResultBody body;
        metrics.CacheLookup("result", hit: false);
        try
        {
            body = await fal.GetResultAsync(record.ResponseUrl, cancellationToken);
        }
        catch (FalUpstreamException) when (status.Error is not null)
        {
            // The job failed and fal cannot say more than its status did.
            return (Failed(record, new FalFailure(FalFailureKind.JobFailed, null, status.Error, status.ErrorType)), null);
        }

        if (body.StatusCode is >= 200 and < 300 && status.Error is null)
        {
            try
            {
                var result = StoredResult.Encode(body.Body, generationOptions.Value.InlineResultMaxBytes);
                LogCompleted(logger, record.Id, body.Body.Length);
                return (Completed(record, body.Body), result);
            }
            catch (JsonException)
            {
                return (Failed(record, new FalFailure(FalFailureKind.JobFailed, body.StatusCode, "fal's result was not valid JSON.")), null);
            }
        }

        return (Failed(record, FalErrorParser.FromResult(body, status)), null);
    }

    /// <summary>The completed record, with what the history shows of its images (their URLs, not data URIs).</summary>
    private GenerationRecord Completed(GenerationRecord record, ReadOnlyMemory<byte> result) => record with
    {
        Status = GenerationStatus.Completed,
        QueuePosition = null,
        CompletedAt = time.GetUtcNow(),
        Images = ResultImages.Summarize(result),
    };

    private GenerationRecord Failed(GenerationRecord record, FalFailure failure)
    {
        LogFailed(logger, record.Id, failure.FalStatusCode, failure.ErrorType);
        return record with
        {
            Status = GenerationStatus.Failed,
            QueuePosition = null,
            CompletedAt = time.GetUtcNow(),
            Error = GenerationError.From(failure),
        };
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Generation {GenerationId} completed ({ResultBytes} bytes of result)")]
    private static partial void LogCompleted(ILogger logger, string generationId, int resultBytes);

    [LoggerMessage(Level = LogLevel.Information, Message = "Generation {GenerationId} failed (fal status {FalStatus}, {ErrorType})")]
    private static partial void LogFailed(ILogger logger, string generationId, int? falStatus, string? errorType);
}
