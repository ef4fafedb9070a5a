using System.Text.Json;
using Gateway.Hosting;
using Gateway.Storage;
using Gateway.Upstream;
using Microsoft.Extensions.Options;

namespace Gateway.Generations;

/// <summary>A generation as seen now: the stored record, fal's live status while it runs, and its result once done.</summary>
internal sealed record GenerationSnapshot(GenerationRecord Record, FalStatus? Live);

/// <summary>Submits jobs to fal, answers reads from the store, and turns fal's COMPLETED into a stored terminal result exactly once.</summary>
internal sealed partial class GenerationService(
    FalQueueClient fal,
    IGenerationStore store,
    RequestCoalescer coalescer,
    CompletionHub hub,
    GatewayMetrics metrics,
    IHostApplicationLifetime lifetime,
    IOptions<GenerationOptions> generationOptions,
    IOptions<FalOptions> falOptions,
    IEnumerable<IGenerationListener> listeners,
    TimeProvider time,
    ILogger<GenerationService> logger)
{
    private static readonly TimeSpan ResultLease = TimeSpan.FromSeconds(60);

    public string GenerateModel => falOptions.Value.Model;

    public string EditModel => falOptions.Value.EditModel;

    /// <summary>Where fal should deliver the completion webhook: <c>{PublicBaseUrl}/v1/webhooks/fal</c>, or null (the gateway polls).</summary>
    public string? WebhookUrl => generationOptions.Value.PublicBaseUrl is { Length: > 0 } publicBase
        ? $"{publicBase.TrimEnd('/')}/v1/webhooks/fal"
        : null;

    public async Task<GenerationRecord> SubmitAsync(string client, string endpointId, ImageRequest request)
    {
        // A job fal accepted but the gateway cannot record would be billed and lost: check the store first.
        if (!await store.IsHealthyAsync(CancellationToken.None))
        {
            throw new StoreUnavailableException("The gateway's store (Redis) is not reachable, so no job was submitted.", beforeSubmit: true);
        }

        var input = JsonSerializer.SerializeToUtf8Bytes(request.ToFalInput(), FalInputJsonContext.Default.FalImageInput);

        // Once the bytes may have left, nothing cancels or repeats the submit: fal would bill a second job.
        var submitted = await fal.SubmitAsync(endpointId, input, WebhookUrl, CancellationToken.None);
        return await RecordSubmittedAsync(client, endpointId, submitted, request);
    }

    /// <summary>
    /// Records a job fal accepted as owned by <paramref name="client"/> and tells the listeners; shared by the
    /// /v1 routes and the fal client proxy, so either sees the other's jobs.
    /// </summary>
    public async Task<GenerationRecord> RecordSubmittedAsync(string client, string endpointId, FalSubmitResponse submitted, ImageRequest request)
    {
        GatewayMetrics.TagRequestId(submitted.RequestId);
        var record = new GenerationRecord
        {
            Id = submitted.RequestId,
            Client = client,
            Model = endpointId,
            Status = GenerationStatus.InQueue,
            QueuePosition = submitted.QueuePosition,
            CreatedAt = time.GetUtcNow(),
            StatusUrl = QueueUrl(submitted.StatusUrl, submitted.RequestId, "/status"),
            ResponseUrl = QueueUrl(submitted.ResponseUrl, submitted.RequestId, ""),
            CancelUrl = QueueUrl(submitted.CancelUrl, submitted.RequestId, "/cancel"),
            NumImages = request.NumImages ?? 1,
        };
        await CreateWithRetriesAsync(record);
        LogSubmitted(logger, record.Id, client, endpointId, record.NumImages);
        foreach (var listener in listeners)
        {
            await listener.OnSubmittedAsync(record, CancellationToken.None);
        }

        return record;
    }

    private async Task CreateWithRetriesAsync(GenerationRecord record)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await store.CreateAsync(record, CancellationToken.None);
                return;
            }
            catch (Exception e) when (attempt < 3 && e is StackExchange.Redis.RedisException or StackExchange.Redis.RedisTimeoutException)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), time);
            }
            catch (Exception e) when (e is StackExchange.Redis.RedisException or StackExchange.Redis.RedisTimeoutException)
            {
                LogLostRecord(logger, record.Id, record.Client, e);
                throw new StoreUnavailableException(
                    $"fal accepted the job as '{record.Id}', but the gateway could not record it; operators can find it in the logs.", e);
            }
        }
    }

    /// <summary>The caller's generation, or null when it does not exist or belongs to another client.</summary>
    public async Task<GenerationRecord?> FindAsync(string client, string id, CancellationToken cancellationToken)
    {
        GatewayMetrics.TagRequestId(id);
        return await store.GetAsync(id, cancellationToken) is { } record && record.Client == client ? record : null;
    }

    /// <summary>The record as the store has it now (another replica may have ended it).</summary>
    public async Task<GenerationRecord> ReloadAsync(GenerationRecord record, CancellationToken cancellationToken) =>
        record.IsTerminal ? record : await store.GetAsync(record.Id, cancellationToken) ?? record;

    /// <summary>Brings a pending generation up to date with fal (status cached and coalesced per replica).</summary>
    public async Task<GenerationSnapshot> ObserveAsync(GenerationRecord record, bool logs, CancellationToken cancellationToken)
    {
        if (record.IsTerminal)
        {
            return new GenerationSnapshot(record, null);
        }

        var status = await coalescer.RunAsync(
            $"status:{record.Id}:{logs}", generationOptions.Value.StatusCacheTtl,
            ct => fal.GetStatusAsync(record.StatusUrl, logs, ct), cancellationToken, cache: "status");
        if (status.Status == FalStatus.Completed)
        {
            record = await EnsureCompletedAsync(record, status, cancellationToken);
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
            return await EndAsync(record with { Status = GenerationStatus.Completed, QueuePosition = null, CompletedAt = time.GetUtcNow() }, result, cancellationToken);
        }

        if (status == "ERROR" && (payload is not null || error is not null))
        {
            var (detail, errorType, fieldErrors) = payload is { } body ? FalQueueClient.ParseError(body.ToArray()) : ("", null, null);
            var code = ParseStatusCode(error);
            var failure = new FalFailure(FalFailureKind.JobFailed, code,
                string.IsNullOrWhiteSpace(detail) ? payloadError ?? error ?? "fal reported an error." : detail, errorType, fieldErrors);
            return await EndAsync(Failed(record, failure), null, cancellationToken);
        }

        // No usable payload (payload_error, or null): the result is fetched from fal once.
        return await EnsureCompletedAsync(record, new FalStatus(FalStatus.Completed, null, null, null, null), cancellationToken);
    }

    /// <summary>fal's webhook says "Invalid status code: 422".</summary>
    private static int? ParseStatusCode(string? error)
    {
        var digits = new string((error ?? "").Reverse().TakeWhile(char.IsDigit).Reverse().ToArray());
        return int.TryParse(digits, System.Globalization.CultureInfo.InvariantCulture, out var code) && code is >= 100 and < 600 ? code : null;
    }

    public Task<StoredResult?> GetResultAsync(string id, CancellationToken cancellationToken)
    {
        metrics.CacheLookup("result", hit: true);
        return store.GetResultAsync(id, cancellationToken);
    }

    public Task<byte[]?> GetBlobAsync(string id, int index, CancellationToken cancellationToken) =>
        store.GetBlobAsync(id, index, cancellationToken);

    public async Task<FalCancelOutcome> CancelAsync(GenerationRecord record, CancellationToken cancellationToken) =>
        record.IsTerminal ? FalCancelOutcome.AlreadyCompleted : await fal.CancelAsync(record.CancelUrl, cancellationToken);

    /// <summary>Fetches and stores the terminal result once: coalesced on this replica, leased across replicas.</summary>
    public Task<GenerationRecord> EnsureCompletedAsync(GenerationRecord record, FalStatus status, CancellationToken cancellationToken) =>
        coalescer.RunAsync($"complete:{record.Id}", TimeSpan.Zero, ct => CompleteOnceAsync(record, status, ct), cancellationToken);

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

    /// <summary>Stores a terminal outcome; the one writer that ends the generation tells the listeners.</summary>
    private async Task<GenerationRecord> EndAsync(GenerationRecord terminal, StoredResult? result, CancellationToken cancellationToken)
    {
        if (!await store.CompleteAsync(terminal, result, cancellationToken))
        {
            return await store.GetAsync(terminal.Id, cancellationToken) ?? terminal;
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
                return (record with { Status = GenerationStatus.Completed, QueuePosition = null, CompletedAt = time.GetUtcNow() }, result);
            }
            catch (JsonException)
            {
                return (Failed(record, new FalFailure(FalFailureKind.JobFailed, body.StatusCode, "fal's result was not valid JSON.")), null);
            }
        }

        var (detail, errorType, fieldErrors) = FalQueueClient.ParseError(body.Body);
        var failure = new FalFailure(
            FalFailureKind.JobFailed,
            body.StatusCode is >= 200 and < 300 ? null : body.StatusCode,
            string.IsNullOrWhiteSpace(detail) ? status.Error ?? $"fal answered {body.StatusCode}." : detail,
            status.ErrorType ?? errorType,
            fieldErrors);
        return (Failed(record, failure), null);
    }

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

    /// <summary>fal's own URL when it points at the configured queue host, else the documented owner/app form.</summary>
    private string QueueUrl(string? returned, string requestId, string suffix)
    {
        var options = falOptions.Value;
        var queueBase = new Uri(options.QueueBaseUrl);
        if (Uri.TryCreate(returned, UriKind.Absolute, out var uri)
            && uri.Scheme == queueBase.Scheme && uri.Authority == queueBase.Authority && uri.AbsolutePath.EndsWith(requestId + suffix, StringComparison.Ordinal))
        {
            return uri.GetLeftPart(UriPartial.Path);
        }

        return $"{options.QueueBaseUrl.TrimEnd('/')}/{options.AppId}/requests/{Uri.EscapeDataString(requestId)}{suffix}";
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Submitted generation {GenerationId} for {Client} to {Model} ({NumImages} images)")]
    private static partial void LogSubmitted(ILogger logger, string generationId, string client, string model, int numImages);

    [LoggerMessage(Level = LogLevel.Error, Message = "fal accepted generation {GenerationId} for {Client} but the store write failed; it is not tracked")]
    private static partial void LogLostRecord(ILogger logger, string generationId, string client, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Generation {GenerationId} completed ({ResultBytes} bytes of result)")]
    private static partial void LogCompleted(ILogger logger, string generationId, int resultBytes);

    [LoggerMessage(Level = LogLevel.Information, Message = "Generation {GenerationId} failed (fal status {FalStatus}, {ErrorType})")]
    private static partial void LogFailed(ILogger logger, string generationId, int? falStatus, string? errorType);
}
