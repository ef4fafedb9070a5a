using System.Collections.Concurrent;

namespace FalEmulator;

/// <summary>What the stand-in saw and what it is told to break; thread-safe.</summary>
public sealed class FalEmulatorState
{
    private readonly Lock _gate = new();
    private readonly List<RequestEntry> _requests = [];
    private readonly List<FaultRule> _faults = [];
    private readonly List<WebhookAttempt> _webhookAttempts = [];
    private readonly ConcurrentDictionary<string, int> _statusCalls = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _resultCalls = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _downloads = new(StringComparer.Ordinal);
    private readonly SigningKeys _signingKeys;
    private int _submitCount;
    private int _acceptedSubmitCount;
    private int _statusCallCount;
    private int _resultCallCount;
    private int _cancelCount;
    private int _uploadCount;
    private int _uploadPutCount;
    private int _runCount;
    private int _webhooksSent;
    private int _downloadCount;

    internal FalEmulatorState(IEnumerable<FaultRule> faults, SigningKeys signingKeys)
    {
        _signingKeys = signingKeys;
        foreach (var rule in faults)
        {
            AddFault(rule);
        }
    }

    internal JobScheduler? Scheduler { get; set; }

    internal FileStore? Files { get; set; }

    /// <summary>Every POST that reached a submit route, accepted or refused.</summary>
    public int SubmitCount => Volatile.Read(ref _submitCount);

    public int AcceptedSubmitCount => Volatile.Read(ref _acceptedSubmitCount);

    /// <summary>Status and status/stream calls.</summary>
    public int StatusCallCount => Volatile.Read(ref _statusCallCount);

    public int ResultCallCount => Volatile.Read(ref _resultCallCount);

    public int CancelCount => Volatile.Read(ref _cancelCount);

    /// <summary>Storage initiate calls (single and multipart).</summary>
    public int UploadCount => Volatile.Read(ref _uploadCount);

    /// <summary>PUTs of file bytes to upload URLs (parts count one each).</summary>
    public int UploadPutCount => Volatile.Read(ref _uploadPutCount);

    /// <summary>Calls to the synchronous run endpoint (fal.run).</summary>
    public int RunCount => Volatile.Read(ref _runCount);

    /// <summary>Webhook deliveries attempted: every POST, so duplicates and retries count each time.</summary>
    public int WebhooksSent => Volatile.Read(ref _webhooksSent);

    /// <summary>GETs of files on the CDN (<c>/files/…</c>), answered or not (a fault, an expired file).</summary>
    public int FileDownloadCount => Volatile.Read(ref _downloadCount);

    /// <summary>GETs of one file, by its name (the part of its URL after <c>/files/</c>).</summary>
    public int FileDownloadsOf(string name) => _downloads.GetValueOrDefault(name);

    /// <summary>The names of the files a job made, in the order of its images (none with sync_mode), expired or not.</summary>
    public IReadOnlyList<string> FilesOf(string requestId) => Scheduler?.Find(requestId)?.Files.ToList() ?? [];

    /// <summary>A file's bytes as the CDN holds them now, without counting a download; null once it is gone or expired.</summary>
    public byte[]? FileBytes(string name) =>
        (Files ?? throw new InvalidOperationException("The emulator has not started.")).Get(name, DateTimeOffset.UtcNow)?.Bytes;

    /// <summary>What a job's submit asked of fal's storage (object expiry, X-Fal-Store-IO); null for an unknown job.</summary>
    public StoragePreferences? StorageOf(string requestId) => Scheduler?.Find(requestId)?.Storage;

    public int StatusCallsFor(string requestId) => _statusCalls.GetValueOrDefault(requestId);

    public int ResultCallsFor(string requestId) => _resultCalls.GetValueOrDefault(requestId);

    /// <summary>Every request received (control endpoints excepted), in arrival order.</summary>
    public IReadOnlyList<RecordedRequest> Requests
    {
        get
        {
            lock (_gate)
            {
                return [.. _requests.Select(r => r.ToRecord())];
            }
        }
    }

    /// <summary>Every webhook POST attempted, in order, with its outcome.</summary>
    public IReadOnlyList<WebhookAttempt> WebhookAttempts
    {
        get
        {
            lock (_gate)
            {
                return [.. _webhookAttempts];
            }
        }
    }

    public IReadOnlyList<FaultRule> Faults
    {
        get
        {
            lock (_gate)
            {
                return [.. _faults.Select(Copy)];
            }
        }
    }

    public void AddFault(FaultRule rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        if (!FaultKinds.IsKnown(rule.Operation, rule.Kind))
        {
            throw new ArgumentException($"Unknown fault kind '{rule.Kind}' for operation {rule.Operation}.", nameof(rule));
        }

        lock (_gate)
        {
            _faults.Add(Copy(rule));
        }
    }

    public void ClearFaults()
    {
        lock (_gate)
        {
            _faults.Clear();
        }
    }

    /// <summary>Clears counters, recorded requests and faults; jobs and files stay.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _requests.Clear();
            _faults.Clear();
            _webhookAttempts.Clear();
        }

        _statusCalls.Clear();
        _resultCalls.Clear();
        _downloads.Clear();
        Interlocked.Exchange(ref _downloadCount, 0);
        Interlocked.Exchange(ref _submitCount, 0);
        Interlocked.Exchange(ref _acceptedSubmitCount, 0);
        Interlocked.Exchange(ref _statusCallCount, 0);
        Interlocked.Exchange(ref _resultCallCount, 0);
        Interlocked.Exchange(ref _cancelCount, 0);
        Interlocked.Exchange(ref _uploadCount, 0);
        Interlocked.Exchange(ref _uploadPutCount, 0);
        Interlocked.Exchange(ref _runCount, 0);
        Interlocked.Exchange(ref _webhooksSent, 0);
    }

    /// <summary>Makes a new Ed25519 webhook key; the JWKS then lists it (and the old one when <paramref name="keepOld"/>).</summary>
    public void RotateSigningKey(bool keepOld) => _signingKeys.Rotate(keepOld);

    /// <summary>Test helper: finishes a queued or running job now.</summary>
    public void CompleteNow(string requestId) =>
        (Scheduler ?? throw new InvalidOperationException("The emulator has not started.")).CompleteNow(requestId);

    internal RequestEntry Record(string method, string pathAndQuery, IReadOnlyDictionary<string, string> headers, long bodyLength, DateTimeOffset at)
    {
        var entry = new RequestEntry(method, pathAndQuery, headers, at) { BodyLength = bodyLength };
        lock (_gate)
        {
            _requests.Add(entry);
        }

        return entry;
    }

    internal string? TakeFault(FalOperation operation, string? requestId)
    {
        lock (_gate)
        {
            foreach (var rule in _faults)
            {
                if (rule.Operation != operation || rule.Count == 0)
                {
                    continue;
                }

                if (rule.RequestId is not null && !string.Equals(rule.RequestId, requestId, StringComparison.Ordinal))
                {
                    continue;
                }

                if (rule.Count > 0)
                {
                    rule.Count--;
                }

                return rule.Kind;
            }
        }

        return null;
    }

    internal void CountSubmit() => Interlocked.Increment(ref _submitCount);

    internal void CountAcceptedSubmit() => Interlocked.Increment(ref _acceptedSubmitCount);

    internal void CountStatus(string requestId)
    {
        Interlocked.Increment(ref _statusCallCount);
        _statusCalls.AddOrUpdate(requestId, 1, (_, n) => n + 1);
    }

    internal void CountResult(string requestId)
    {
        Interlocked.Increment(ref _resultCallCount);
        _resultCalls.AddOrUpdate(requestId, 1, (_, n) => n + 1);
    }

    internal void CountDownload(string name)
    {
        Interlocked.Increment(ref _downloadCount);
        _downloads.AddOrUpdate(name, 1, (_, n) => n + 1);
    }

    internal void CountCancel() => Interlocked.Increment(ref _cancelCount);

    internal void CountUpload() => Interlocked.Increment(ref _uploadCount);

    internal void CountUploadPut() => Interlocked.Increment(ref _uploadPutCount);

    internal void CountRun() => Interlocked.Increment(ref _runCount);

    internal void RecordWebhook(WebhookAttempt attempt)
    {
        Interlocked.Increment(ref _webhooksSent);
        lock (_gate)
        {
            _webhookAttempts.Add(attempt);
        }
    }

    internal StatsResponse Stats()
    {
        int requests;
        int faults;
        lock (_gate)
        {
            requests = _requests.Count;
            faults = _faults.Count(f => f.Count != 0);
        }

        return new StatsResponse(SubmitCount, AcceptedSubmitCount, StatusCallCount, ResultCallCount, CancelCount,
            UploadCount, RunCount, WebhooksSent, requests, faults, FileDownloadCount);
    }

    private static FaultRule Copy(FaultRule rule) =>
        new() { Operation = rule.Operation, Kind = rule.Kind, Count = rule.Count, RequestId = rule.RequestId };

    internal sealed class RequestEntry(string method, string pathAndQuery, IReadOnlyDictionary<string, string> headers, DateTimeOffset at)
    {
        public long BodyLength { get; set; }

        public string? Body { get; set; }

        public RecordedRequest ToRecord() => new(method, pathAndQuery, headers, BodyLength, at, Body);
    }
}

/// <summary>One request the stand-in received.</summary>
/// <param name="Body">The body as text when it was JSON of at most 64 KB and was read to its end (e.g. every submit); otherwise null.</param>
public sealed record RecordedRequest(
    string Method, string PathAndQuery, IReadOnlyDictionary<string, string> Headers, long BodyLength, DateTimeOffset At, string? Body);

/// <summary>One webhook POST: where it went and what came back (StatusCode null when the connection failed or it was not sent).</summary>
/// <remarks><see cref="At"/> is when the answer came back; <see cref="SentAt"/> when the POST started, for latency measurements.</remarks>
public sealed record WebhookAttempt(string RequestId, string Url, int? StatusCode, string? Error, bool Corrupted, DateTimeOffset At)
{
    public DateTimeOffset SentAt { get; init; }
}
