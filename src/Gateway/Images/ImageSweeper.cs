using Gateway.Generations;
using Microsoft.Extensions.Options;

namespace Gateway.Images;

/// <summary>
/// Deletes stored images once their generation has expired (<c>Gateway:ResultTtl</c> after it completed), so no image
/// outlives its record. Every replica sweeps; deleting what another already deleted is harmless.
/// </summary>
internal sealed partial class ImageSweeper(
    IImageStore images,
    IOptions<ImagesOptions> options,
    IOptions<GenerationOptions> generationOptions,
    ImageMetrics metrics,
    TimeProvider time,
    ILogger<ImageSweeper> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Enabled)
        {
            return;
        }

        using var timer = new PeriodicTimer(options.Value.SweepInterval, time);
        try
        {
            do
            {
                await SweepOnceAsync(stoppingToken);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    internal async Task<int> SweepOnceAsync(CancellationToken cancellationToken)
    {
        try
        {
            var deleted = await images.SweepAsync(time.GetUtcNow() - generationOptions.Value.ResultTtl, cancellationToken);
            if (deleted > 0)
            {
                metrics.Swept(deleted);
                LogSwept(logger, deleted);
            }

            return deleted;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogSweepFailed(logger, e);
            return 0;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Deleted {Count} stored images whose generations expired")]
    private static partial void LogSwept(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sweeping expired images failed; the next sweep tries again")]
    private static partial void LogSweepFailed(ILogger logger, Exception exception);
}
