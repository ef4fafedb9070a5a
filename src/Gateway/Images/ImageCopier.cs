using Gateway.Storage;
using System.Threading.Channels;
using Gateway.Generations;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Gateway.Images;

/// <summary>
/// Copies each completed generation's images into the image store once, across replicas, without holding up its end: the
/// terminal record is stored as COMPLETED with fal's URLs and <c>image_copy: pending</c> (the copy scheduled first, so it
/// survives a replica that dies), and the replica that ended it starts the copy at once. Whoever holds the generation's
/// lease copies; the others skip it. Each image streams from its source through the checks into the store; when all are in,
/// one store write swaps the result's URLs for the gateway's links. A failed attempt is retried with backoff; after the
/// last one the copy is given up, fal's URLs stay, and the failure is logged and counted.
/// </summary>
internal sealed partial class ImageCopier(
    IServiceScopeFactory scopes,
    IGenerationStore generations,
    IImageCopySchedule schedule,
    IImageStore images,
    CompletionHub hub,
    IOptions<ImagesOptions> options,
    ImageMetrics metrics,
    TimeProvider time,
    ILogger<ImageCopier> logger) : BackgroundService, IGenerationListener
{
    private const string LeasePurpose = "images";
    private const int BatchSize = 32;
    private const int MaxParallelCopies = 4;

    private readonly Channel<string> _ended = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = false });
    private readonly string _owner = Guid.NewGuid().ToString("N");

    private ImagesOptions Options => options.Value;

    /// <summary>Covers one attempt: a replica that dies mid-copy lets go of the generation this long after it took it.</summary>
    private TimeSpan LeaseTtl => Options.CopyTimeout + TimeSpan.FromSeconds(30);

    public Task OnSubmittedAsync(GenerationRecord record, CancellationToken cancellationToken) => Task.CompletedTask;

    public async ValueTask<GenerationRecord> OnEndingAsync(GenerationRecord terminal, CancellationToken cancellationToken)
    {
        if (!Options.Enabled || terminal.Status != GenerationStatus.Completed)
        {
            return terminal;
        }

        // Scheduled before the record says "pending": a replica that dies after storing it leaves the copy to the others.
        await schedule.ScheduleAsync(terminal.Id, time.GetUtcNow());
        return terminal with { ImageCopy = ImageCopyState.Pending };
    }

    public Task OnEndedAsync(GenerationRecord record, CancellationToken cancellationToken)
    {
        if (record.ImageCopy == ImageCopyState.Pending)
        {
            _ended.Writer.TryWrite(record.Id);
        }

        return Task.CompletedTask;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Options.Enabled)
        {
            return;
        }

        var parallel = new ParallelOptions { MaxDegreeOfParallelism = MaxParallelCopies, CancellationToken = stoppingToken };
        var ended = Parallel.ForEachAsync(_ended.Reader.ReadAllAsync(stoppingToken), parallel, async (id, ct) => await RunAsync(id, fromSchedule: false, ct));
        try
        {
            using var timer = new PeriodicTimer(Options.CopyPollInterval, time);
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    var due = await schedule.DueAsync(time.GetUtcNow(), BatchSize);
                    await Parallel.ForEachAsync(due, parallel, async (id, ct) => await RunAsync(id, fromSchedule: true, ct));
                }
                catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    LogPassFailed(logger, e); // e.g. Redis unreachable: the next tick tries again
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // shutting down: what is left stays scheduled for the other replicas
        }

        try
        {
            await ended;
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>One generation's copy, if this replica gets its lease and it is (still) due; never throws but on shutdown.</summary>
    internal async Task RunAsync(string id, bool fromSchedule, CancellationToken stoppingToken)
    {
        try
        {
            if (!await generations.TryAcquireLeaseAsync(LeasePurpose, id, _owner, LeaseTtl))
            {
                return; // another replica is copying it
            }

            try
            {
                // The due list may be stale: another replica may have copied it, or failed and rescheduled it, since.
                if (fromSchedule && (await schedule.DueAtAsync(id) is not { } due || due > time.GetUtcNow()))
                {
                    return;
                }

                await CopyAsync(id, stoppingToken);
            }
            finally
            {
                await generations.ReleaseLeaseAsync(LeasePurpose, id, _owner);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            LogStoreFailed(logger, id, e); // still scheduled: looked at again once the store answers
        }
    }

    private async Task CopyAsync(string id, CancellationToken stoppingToken)
    {
        var record = await generations.GetAsync(id, stoppingToken);
        if (record is null || (record.IsTerminal && record.ImageCopy != ImageCopyState.Pending))
        {
            await schedule.RemoveAsync(id); // expired, or copied or given up by another replica
            return;
        }

        if (!record.IsTerminal)
        {
            // Scheduled by a replica about to store the end: look again shortly.
            await schedule.ScheduleAsync(id, time.GetUtcNow() + Options.CopyPollInterval);
            return;
        }

        if (await generations.GetResultAsync(id, stoppingToken) is not { } result)
        {
            await schedule.RemoveAsync(id);
            return;
        }

        try
        {
            var stored = await CopyImagesAsync(record, result, stoppingToken);
            var linked = result.WithImagesInStore(out var freedBlobs);
            await generations.UpdateEndedAsync(id,
                r => r.ImageCopy == ImageCopyState.Pending ? r with { ImageCopy = ImageCopyState.Stored, StoredImages = stored } : null,
                linked, freedBlobs, CancellationToken.None);
            await hub.ChangedAfterEndAsync(id); // replicas that kept the record with fal's URLs read it again
            await schedule.RemoveAsync(id);
            metrics.Copy("stored");
            LogStored(logger, id, stored.Count, stored.Sum(i => i.Length), record.ImageCopyAttempts + 1);
        }
        catch (Exception e) when (!RedisFailure.IsUnavailable(e) && !(e is OperationCanceledException && stoppingToken.IsCancellationRequested))
        {
            await FailedAttemptAsync(record, e);
        }
    }

    /// <summary>Every image of the result, one after the other, each streamed from its source into the store within one time budget.</summary>
    private async Task<List<StoredImage>> CopyImagesAsync(GenerationRecord record, StoredResult result, CancellationToken stoppingToken)
    {
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        budget.CancelAfter(Options.CopyTimeout);
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var sources = scope.ServiceProvider.GetRequiredService<ImageSources>();
            var stored = new List<StoredImage>();
            foreach (var image in result.Images())
            {
                await using var source = await sources.OpenAsync(record.Id, image, budget.Token);
                await using var checkedImage = new CheckedImageStream(source, image.Index, Options.MaxImageBytes);
                await checkedImage.ReadHeadAsync(budget.Token);
                await images.WriteAsync(record.Id, image.Index, checkedImage, checkedImage.ContentType, record.CompletedAt ?? time.GetUtcNow(), budget.Token);
                if (!checkedImage.Complete)
                {
                    throw new ImageCopyException($"The store stopped reading image {image.Index} before its end.", permanent: false);
                }

                stored.Add(new StoredImage(checkedImage.ContentType, checkedImage.BytesRead, checkedImage.Sha256));
            }

            return stored;
        }
        catch (OperationCanceledException e) when (!stoppingToken.IsCancellationRequested)
        {
            throw new ImageCopyException($"Copying the images took longer than Images__CopyTimeout ({Options.CopyTimeout}).", permanent: false, e);
        }
    }

    private async Task FailedAttemptAsync(GenerationRecord record, Exception failure)
    {
        var attempts = record.ImageCopyAttempts + 1;
        var permanent = failure is ImageCopyException { Permanent: true };
        if (!permanent && attempts < Options.CopyAttempts)
        {
            var delay = Options.CopyRetryDelay * Math.Pow(2, attempts - 1);
            await generations.UpdateEndedAsync(record.Id,
                r => r.ImageCopy == ImageCopyState.Pending ? r with { ImageCopyAttempts = attempts } : null, null, [], CancellationToken.None);
            await schedule.ScheduleAsync(record.Id, time.GetUtcNow() + delay);
            metrics.Copy("retry");
            LogRetrying(logger, record.Id, attempts, delay, failure.Message);
            return;
        }

        await generations.UpdateEndedAsync(record.Id,
            r => r.ImageCopy == ImageCopyState.Pending ? r with { ImageCopy = ImageCopyState.Failed, ImageCopyAttempts = attempts } : null,
            null, [], CancellationToken.None);
        await hub.ChangedAfterEndAsync(record.Id);
        await schedule.RemoveAsync(record.Id);
        metrics.Copy("failed");
        LogGivenUp(logger, failure, record.Id, attempts);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Stored the {Count} images of generation {GenerationId} ({Bytes} bytes, attempt {Attempt})")]
    private static partial void LogStored(ILogger logger, string generationId, int count, long bytes, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Copying the images of generation {GenerationId} failed (attempt {Attempt}); trying again in {Delay}: {Reason}")]
    private static partial void LogRetrying(ILogger logger, string generationId, int attempt, TimeSpan delay, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Gave up copying the images of generation {GenerationId} after {Attempts} attempts; its result keeps fal's URLs")]
    private static partial void LogGivenUp(ILogger logger, Exception exception, string generationId, int attempts);

    [LoggerMessage(Level = LogLevel.Warning, Message = "An image copy pass failed")]
    private static partial void LogPassFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Copying the images of {GenerationId} stopped (the generation store failed); it stays scheduled")]
    private static partial void LogStoreFailed(ILogger logger, string generationId, Exception exception);
}
