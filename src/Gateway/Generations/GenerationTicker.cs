using System.Runtime.ExceptionServices;
using Gateway.Upstream;
using Microsoft.Extensions.Options;

namespace Gateway.Generations;

/// <summary>
/// The looks behind event streams: on this replica, one look at a generation per <c>Gateway__EventStreamPollInterval</c>
/// (and at once when its end is signalled), shared by every stream open on it. A stream wakes when what it would send
/// changes (status, queue position, the end) or its keep-alive is due, not on every look.
/// </summary>
/// <remarks>
/// Each stream used to look for itself every second: a timer, a delay task and the look's tasks per stream per second,
/// objects that lived a second and so outlived a gen0 collection. With 1,000 streams open that made 4–5 gen1
/// collections a second and doubled the length of a pause (README, issue 13).
/// </remarks>
internal sealed class GenerationTicker(
    GenerationService service,
    CompletionHub hub,
    IOptions<GenerationOptions> options,
    TimeProvider time)
{
    private readonly Dictionary<string, Ticker> _tickers = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>
    /// What the latest look found: null until the first look answers (or while fal is briefly unreachable), and
    /// <see cref="Next"/>, which completes when a later look finds another state. <see cref="Failure"/> is a look's
    /// error other than fal's (Redis unreachable): the streams end with it, as each did when it looked for itself.
    /// </summary>
    internal sealed record Look(GenerationSnapshot? Snapshot, Task Next, ExceptionDispatchInfo? Failure = null);

    /// <summary>A stream's hold on the looks at one generation; disposing it lets them stop when no stream is left.</summary>
    internal sealed class Subscription(GenerationTicker owner, Ticker ticker) : IDisposable
    {
        private int _disposed;

        public Look Current => ticker.Current;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Release(ticker);
            }
        }
    }

    /// <summary>Generations looked at for event streams on this replica now.</summary>
    public int Watched
    {
        get
        {
            lock (_gate)
            {
                return _tickers.Count;
            }
        }
    }

    /// <summary>Joins the looks at <paramref name="record"/>'s generation, starting them when it is the first stream on it here.</summary>
    public Subscription Subscribe(GenerationRecord record)
    {
        lock (_gate)
        {
            if (!_tickers.TryGetValue(record.Id, out var ticker))
            {
                ticker = new Ticker(this, record);
                _tickers.Add(record.Id, ticker);
                ticker.Start();
            }

            ticker.Subscribers++;
            return new Subscription(this, ticker);
        }
    }

    private void Release(Ticker ticker)
    {
        lock (_gate)
        {
            if (--ticker.Subscribers == 0)
            {
                Forget(ticker);
                ticker.Stop();
            }
        }
    }

    /// <summary>Called under the lock: the next stream on the generation starts fresh looks.</summary>
    private void Forget(Ticker ticker)
    {
        if (_tickers.TryGetValue(ticker.Id, out var current) && ReferenceEquals(current, ticker))
        {
            _tickers.Remove(ticker.Id);
        }
    }

    private async Task RunAsync(Ticker ticker, CancellationToken token)
    {
        try
        {
            using var watch = hub.WatchFor(ticker.Id);
            var latest = ticker.Record;
            string? published = null;
            while (true)
            {
                if (await LookAsync(latest, token) is { } snapshot)
                {
                    latest = snapshot.Record;
                    var state = GenerationEventStream.EventId(snapshot);
                    if (state != published)
                    {
                        published = state;
                        ticker.Publish(snapshot);
                    }

                    if (snapshot.Record.IsTerminal)
                    {
                        return;
                    }
                }

                // At once when the end is signalled; after that (a look that did not yet see it) at the interval again.
                var nap = Task.Delay(options.Value.EventStreamPollInterval, time, token);
                await (watch.Ended.IsCompleted ? nap : Task.WhenAny(watch.Ended, nap));
                token.ThrowIfCancellationRequested();
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // The last stream left.
        }
        catch (Exception e)
        {
            ticker.Publish(ticker.Current.Snapshot, ExceptionDispatchInfo.Capture(e));
        }
        finally
        {
            lock (_gate)
            {
                Forget(ticker);
                ticker.Dispose();
            }
        }
    }

    /// <summary>The generation now, or null while fal is briefly unreachable: the streams stay, the next look tries again.</summary>
    private async Task<GenerationSnapshot?> LookAsync(GenerationRecord latest, CancellationToken token)
    {
        try
        {
            return await service.ObserveAsync(await service.ReloadAsync(latest, token), logs: false, token);
        }
        catch (FalUpstreamException)
        {
            return null;
        }
    }

    /// <summary>The looks at one generation: what the latest found, and the signal for the next. Its loop is <see cref="RunAsync"/>.</summary>
    internal sealed class Ticker(GenerationTicker owner, GenerationRecord record) : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private bool _finished;
        private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private volatile Look? _current;

        public string Id => record.Id;

        public GenerationRecord Record => record;

        /// <summary>Streams on this generation; read and written under the owner's lock.</summary>
        public int Subscribers { get; set; }

        public Look Current => _current!;

        public void Start()
        {
            _current = new Look(null, _next.Task);
            _ = Task.Run(() => owner.RunAsync(this, _stop.Token)); // not on the subscriber's thread, which holds the owner's lock
        }

        /// <summary>Under the owner's lock: the last stream left, so the loop stops (unless it has already ended).</summary>
        public void Stop()
        {
            if (!_finished)
            {
                _stop.Cancel();
            }
        }

        /// <summary>Under the owner's lock, once, as the loop ends.</summary>
        public void Dispose()
        {
            _finished = true;
            _stop.Dispose();
        }

        /// <summary>
        /// The new look first, then the signal the streams wait on: a stream woken by it reads the new look, never the
        /// old one. Only this ticker's loop publishes.
        /// </summary>
        public void Publish(GenerationSnapshot? snapshot, ExceptionDispatchInfo? failure = null)
        {
            var fired = _next;
            _next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _current = new Look(snapshot, failure is null ? _next.Task : Task.CompletedTask, failure);
            fired.TrySetResult();
        }
    }
}
