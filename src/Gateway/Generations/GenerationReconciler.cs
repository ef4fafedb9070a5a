using Gateway.Hosting;
using Microsoft.Extensions.Options;

namespace Gateway.Generations;

/// <summary>
/// Makes sure every accepted generation ends with its result (or failure) in the store, even when
/// nobody polls and fal's webhook is late, lost, or not configured: unfinished generations are kept
/// in a schedule, and each replica looks at the due ones, holding a short lease per generation so
/// exactly one replica asks fal about each. Looks back off as a generation ages.
/// </summary>
internal sealed partial class GenerationReconciler(
    IServiceScopeFactory scopes,
    IGenerationStore store,
    IOptions<GenerationOptions> options,
    GatewayMetrics metrics,
    TimeProvider time,
    ILogger<GenerationReconciler> logger) : BackgroundService, IGenerationListener
{
    private const int BatchSize = 64;
    private readonly string _owner = Guid.NewGuid().ToString("N");

    public Task OnSubmittedAsync(GenerationRecord record, CancellationToken cancellationToken) =>
        store.SchedulePendingAsync(record.Id, record.CreatedAt + FirstLook);

    public Task OnEndedAsync(GenerationRecord record, CancellationToken cancellationToken) =>
        store.RemovePendingAsync(record.Id);

    /// <summary>With webhooks, fal tells us; the reconciler only steps in when the webhook is late.</summary>
    private TimeSpan FirstLook => string.IsNullOrEmpty(options.Value.PublicBaseUrl) ? options.Value.ReconcileMinDelay : options.Value.WebhookGracePeriod;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.ReconcileInterval, time);
        do
        {
            try
            {
                metrics.GenerationsInFlight(await store.CountPendingAsync());
                var due = await store.GetDuePendingAsync(time.GetUtcNow(), BatchSize);
                await Parallel.ForEachAsync(due, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = stoppingToken },
                    async (id, ct) => await ReconcileAsync(id, ct));
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                LogPassFailed(logger, e); // e.g. Redis unreachable: the next tick tries again
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private async Task ReconcileAsync(string id, CancellationToken cancellationToken)
    {
        if (!await store.TryAcquireLeaseAsync("reconcile", id, _owner, options.Value.ReconcileMaxDelay))
        {
            return; // another replica is looking at it
        }

        try
        {
            // The due list may be stale: another replica may have looked and rescheduled it since.
            if (await store.GetPendingDueAsync(id) is not { } due || due > time.GetUtcNow())
            {
                return;
            }

            var record = await store.GetAsync(id, cancellationToken);
            if (record is null || record.IsTerminal)
            {
                await store.RemovePendingAsync(id);
                return;
            }

            await using var scope = scopes.CreateAsyncScope();
            var service = scope.ServiceProvider.GetRequiredService<GenerationService>();
            GenerationSnapshot snapshot;
            try
            {
                snapshot = await service.ObserveAsync(record, logs: false, cancellationToken);
            }
            catch (Upstream.FalUpstreamException e)
            {
                LogLookFailed(logger, id, e.Failure.Kind);
                await store.SchedulePendingAsync(id, NextLook(record));
                return;
            }

            if (snapshot.Record.IsTerminal)
            {
                await store.RemovePendingAsync(id);
            }
            else
            {
                await store.SchedulePendingAsync(id, NextLook(record));
            }
        }
        finally
        {
            await store.ReleaseLeaseAsync("reconcile", id, _owner);
        }
    }

    /// <summary>A quarter of the generation's age, between the configured bounds.</summary>
    private DateTimeOffset NextLook(GenerationRecord record)
    {
        var now = time.GetUtcNow();
        var delay = TimeSpan.FromTicks(Math.Clamp((now - record.CreatedAt).Ticks / 4,
            options.Value.ReconcileMinDelay.Ticks, options.Value.ReconcileMaxDelay.Ticks));
        return now + delay;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A reconcile pass failed")]
    private static partial void LogPassFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Looking at generation {GenerationId} failed ({Kind}); trying again later")]
    private static partial void LogLookFailed(ILogger logger, string generationId, Upstream.FalFailureKind kind);
}
