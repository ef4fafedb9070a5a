using System.Collections.Concurrent;
using Gateway.Hosting;

namespace Gateway.Generations;

/// <summary>
/// Runs one piece of work per key at a time on this replica and shares its answer: every caller that
/// asks while it runs (and, for <c>cacheFor</c>, after it succeeded) gets the same task. Failures are
/// not kept. This is what holds fal's status calls to one per generation per window, whatever the pollers.
/// </summary>
internal sealed class RequestCoalescer(TimeProvider time, GatewayMetrics metrics)
{
    private const int SweepThreshold = 10_000;
    private readonly ConcurrentDictionary<string, Slot> _slots = new();

    private sealed class Slot
    {
        public readonly TaskCompletionSource<object?> Completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public long FreshUntil = long.MaxValue; // a timestamp; MaxValue while running
    }

    // cache: the metrics label for hits and misses, or null not to count. keep: whether an answer is kept for cacheFor
    // (one that is not is still shared with the callers already waiting for it, like a failure).
    public ValueTask<T> RunAsync<T>(
        string key, TimeSpan cacheFor, Func<CancellationToken, Task<T>> work, CancellationToken cancellationToken, string? cache = null, Func<T, bool>? keep = null) =>
        RunAsync(key, cacheFor, static (work, ct) => work(ct), work, cancellationToken, cache, keep);

    /// <summary>
    /// As above, with the work's <paramref name="state"/> passed in rather than captured: a poll answered from a fresh
    /// answer then allocates nothing here, neither a closure nor a task (issue 13: a proxied status poll's bytes).
    /// </summary>
    public ValueTask<T> RunAsync<TState, T>(
        string key, TimeSpan cacheFor, Func<TState, CancellationToken, Task<T>> work, TState state, CancellationToken cancellationToken,
        string? cache = null, Func<T, bool>? keep = null)
    {
        if (_slots.TryGetValue(key, out var existing) && existing.Completion.Task.IsCompletedSuccessfully && IsFresh(existing))
        {
            Count(cache, hit: true);
            return new((T)existing.Completion.Task.Result!);
        }

        return new(RunOrJoinAsync(key, cacheFor, work, state, cache, keep, cancellationToken));
    }

    private async Task<T> RunOrJoinAsync<TState, T>(
        string key, TimeSpan cacheFor, Func<TState, CancellationToken, Task<T>> work, TState state, string? cache, Func<T, bool>? keep,
        CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_slots.TryGetValue(key, out var existing))
            {
                if (IsFresh(existing))
                {
                    Count(cache, hit: true);
                    return (T)(await existing.Completion.Task.WaitAsync(cancellationToken))!;
                }

                _slots.TryRemove(KeyValuePair.Create(key, existing));
                continue;
            }

            var slot = new Slot();
            if (!_slots.TryAdd(key, slot))
            {
                continue;
            }

            Count(cache, hit: false);
            _ = RunSlotAsync(key, slot, cacheFor, work, state, keep);
            return (T)(await slot.Completion.Task.WaitAsync(cancellationToken))!;
        }
    }

    /// <summary>Running (its answer is shared with whoever asks), or answered less than its <c>cacheFor</c> ago.</summary>
    private bool IsFresh(Slot slot) => Volatile.Read(ref slot.FreshUntil) > time.GetTimestamp();

    private void Count(string? cache, bool hit)
    {
        if (cache is not null)
        {
            metrics.CacheLookup(cache, hit);
        }
    }

    private async Task RunSlotAsync<TState, T>(
        string key, Slot slot, TimeSpan cacheFor, Func<TState, CancellationToken, Task<T>> work, TState state, Func<T, bool>? keep)
    {
        try
        {
            // The shared work must not die with the first caller's request, nor with a draining replica:
            // it is bounded by the fal client's own timeouts.
            var value = await work(state, CancellationToken.None);
            if (cacheFor > TimeSpan.Zero && (keep is null || keep(value)))
            {
                Volatile.Write(ref slot.FreshUntil, time.GetTimestamp() + (long)(cacheFor.TotalSeconds * time.TimestampFrequency));
            }
            else
            {
                _slots.TryRemove(KeyValuePair.Create(key, slot));
            }

            slot.Completion.SetResult(value);
        }
        catch (Exception e)
        {
            _slots.TryRemove(KeyValuePair.Create(key, slot));
            slot.Completion.SetException(e);
        }

        if (_slots.Count > SweepThreshold)
        {
            var now = time.GetTimestamp();
            foreach (var (k, s) in _slots)
            {
                if (Volatile.Read(ref s.FreshUntil) <= now)
                {
                    _slots.TryRemove(KeyValuePair.Create(k, s));
                }
            }
        }
    }
}
