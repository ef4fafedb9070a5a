using Gateway.Storage;
using StackExchange.Redis;

namespace Gateway.Generations;

/// <summary>
/// Tells waiting requests (Prefer: wait, event streams) that a generation ended, on every replica:
/// the replica that ends a generation publishes its id on one Redis channel, and each replica holds
/// one subscription for all its waiters. Without Redis the signal stays in this process.
/// </summary>
internal sealed partial class CompletionHub(IServiceProvider services, GenerationReadCache cache, ILogger<CompletionHub> logger) : IHostedService, IGenerationListener
{
    private readonly Dictionary<string, Waiters> _waiters = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private ISubscriber? _subscriber;

    internal sealed class Waiters
    {
        public readonly TaskCompletionSource Ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Count;
    }

    /// <summary>A registration whose <see cref="Ended"/> completes when the generation ends; dispose when done waiting.</summary>
    public sealed class Watch(CompletionHub hub, string id, Waiters waiters) : IDisposable
    {
        public Task Ended => waiters.Ended.Task;

        public void Dispose() => hub.Release(id, waiters);
    }

    public Watch WatchFor(string id)
    {
        lock (_gate)
        {
            if (!_waiters.TryGetValue(id, out var waiters))
            {
                _waiters[id] = waiters = new Waiters();
            }

            waiters.Count++;
            return new Watch(this, id, waiters);
        }
    }

    private void Release(string id, Waiters waiters)
    {
        lock (_gate)
        {
            if (--waiters.Count == 0 && _waiters.TryGetValue(id, out var current) && current == waiters)
            {
                _waiters.Remove(id);
            }
        }
    }

    private void Signal(string id)
    {
        cache.Ended(id); // before any waiter wakes and reads the record again
        Waiters? waiters;
        lock (_gate)
        {
            _waiters.Remove(id, out waiters);
        }

        waiters?.Ended.TrySetResult();
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (services.GetService<IConnectionMultiplexer>() is { } redis)
        {
            _subscriber = redis.GetSubscriber();
            try
            {
                // Registered locally even while Redis is down; the client re-subscribes when it reconnects.
                await _subscriber.SubscribeAsync(RedisKeys.Ended, (_, id) => Signal(id.ToString()), CommandFlags.FireAndForget);
            }
            catch (Exception e) when (RedisFailure.IsUnavailable(e))
            {
                LogSubscribeFailed(logger, e);
            }
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_subscriber is null)
        {
            return;
        }

        try
        {
            await _subscriber.UnsubscribeAsync(RedisKeys.Ended, flags: CommandFlags.FireAndForget);
        }
        catch (Exception e) when (e is ObjectDisposedException || RedisFailure.IsUnavailable(e))
        {
            // Redis is down, or the host closed the connection first (it may stop and dispose at once): the subscription is gone either way.
        }
    }

    public Task OnSubmittedAsync(GenerationRecord record, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task OnEndedAsync(GenerationRecord record, CancellationToken cancellationToken) => PublishAsync(record.Id);

    /// <summary>
    /// An ended generation's record changed once more (its images were copied into the image store, or given up):
    /// every replica drops what it kept of it, as for an end.
    /// </summary>
    public Task ChangedAfterEndAsync(string id) => PublishAsync(id);

    private async Task PublishAsync(string id)
    {
        if (_subscriber is null)
        {
            Signal(id);
            return;
        }

        try
        {
            await _subscriber.PublishAsync(RedisKeys.Ended, id);
        }
        catch (Exception e) when (RedisFailure.IsUnavailable(e))
        {
            // Waiters on other replicas still see the end on their next look at the store.
            LogPublishFailed(logger, id, e);
            Signal(id);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not subscribe to generation ends yet; waiting requests fall back to polling")]
    private static partial void LogSubscribeFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not publish the end of generation {GenerationId}")]
    private static partial void LogPublishFailed(ILogger logger, string generationId, Exception exception);
}
