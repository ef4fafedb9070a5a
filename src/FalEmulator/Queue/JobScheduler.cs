using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using SkiaSharp;

namespace FalEmulator;

/// <summary>fal's queue in miniature: jobs wait at least QueueTime, then run MaxConcurrent at a time in submit order.</summary>
internal sealed partial class JobScheduler(
    FalEmulatorOptions options,
    FileStore files,
    ImageSource imageSource,
    WebhookSender webhooks,
    TimeProvider time,
    ILogger<JobScheduler> logger) : IDisposable
{
    private readonly Lock _gate = new();
    private readonly LinkedList<Job> _queue = new();
    private readonly ConcurrentDictionary<string, Job> _jobs = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _running;

    /// <summary>Completes at the next change of any job (state or queue position).</summary>
    public Task Changed
    {
        get
        {
            lock (_gate)
            {
                return _changed.Task;
            }
        }
    }

    public int QueueLength
    {
        get
        {
            lock (_gate)
            {
                return _queue.Count;
            }
        }
    }

    public Job? Find(string id) => _jobs.GetValueOrDefault(id);

    public Job Submit(string endpoint, string app, string root, GenerationInput input, PromptDirectives directives, string? webhookUrl,
        TimeSpan? startTimeout = null, StoragePreferences? storage = null)
    {
        var job = new Job(Guid.NewGuid().ToString(), endpoint, app, root, input, directives, webhookUrl,
            directives.RunTime ?? options.RunTime, time.GetUtcNow(), storage);
        _jobs[job.Id] = job;
        lock (_gate)
        {
            _queue.AddLast(job);
        }

        _ = MakeEligible(job);
        if (startTimeout is { } timeout)
        {
            _ = ExpireIfNotStarted(job, timeout);
        }

        return job;
    }

    /// <summary>0-based place among the jobs still waiting, or null once it left the queue.</summary>
    public int? QueuePosition(Job job)
    {
        lock (_gate)
        {
            var position = 0;
            for (var node = _queue.First; node is not null; node = node.Next, position++)
            {
                if (ReferenceEquals(node.Value, job))
                {
                    return position;
                }
            }

            return null;
        }
    }

    /// <summary>A queued job ends cancelled at once; a running one is only flagged and may still complete.</summary>
    public bool Cancel(Job job)
    {
        lock (_gate)
        {
            switch (job.Phase)
            {
                case JobPhase.Completed:
                    return false;
                case JobPhase.Running:
                    job.CancelRequested = true;
                    return true;
            }

            job.CancelRequested = true;
            _queue.Remove(job);
        }

        var body = JsonSerializer.SerializeToUtf8Bytes(new ErrorResponse("Request cancelled"), EmulatorJson.Default.ErrorResponse);
        Complete(job, new JobOutcome(StatusCodes.Status499ClientClosedRequest, body, "Request cancelled", "request_cancelled"));
        Pump();
        return true;
    }

    public void CompleteNow(string requestId)
    {
        var job = Find(requestId) ?? throw new ArgumentException($"No job {requestId}.", nameof(requestId));
        job.FinishNow.Cancel();
        lock (_gate)
        {
            if (job.Phase != JobPhase.Queued)
            {
                return;
            }

            // Jumps the queue; it may briefly exceed MaxConcurrent, which a test helper can afford.
            _queue.Remove(job);
            Start(job);
        }
    }

    public void Dispose()
    {
        // Cancel only: background work may still read the token, and the host disposes twice (explicitly, then DI).
        _stopping.Cancel();
    }

    private async Task MakeEligible(Job job)
    {
        try
        {
            await Task.Delay(options.QueueTime, time, job.FinishNow.Token);
        }
        catch (OperationCanceledException)
        {
            // CompleteNow already started it
        }

        lock (_gate)
        {
            job.Eligible = true;
        }

        Pump();
    }

    // X-Fal-Request-Timeout: a job still queued when it expires ends with a user timeout (504), never retried.
    private async Task ExpireIfNotStarted(Job job, TimeSpan timeout)
    {
        try
        {
            await Task.Delay(timeout, time, _stopping.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        lock (_gate)
        {
            if (job.Phase != JobPhase.Queued)
            {
                return;
            }

            _queue.Remove(job);
        }

        var body = JsonSerializer.SerializeToUtf8Bytes(new ErrorResponse("Request timed out before it started", "request_timeout"),
            EmulatorJson.Default.ErrorResponse);
        Complete(job, new JobOutcome(StatusCodes.Status504GatewayTimeout, body, "Request timed out before it started", "request_timeout", "user"));
        Pump();
    }

    private void Pump()
    {
        lock (_gate)
        {
            // Strict submit order: timers may fire out of order under load, and a later job must not overtake.
            while (_queue.First is { Value.Eligible: true } node && _running < options.MaxConcurrent)
            {
                _queue.Remove(node);
                Start(node.Value);
            }

            SignalChanged();
        }
    }

    // Called under _gate.
    private void Start(Job job)
    {
        _running++;
        job.Phase = JobPhase.Running;
        job.StartedAt = time.GetUtcNow();
        job.Log("Starting image generation", job.StartedAt.Value);
        SignalChanged();
        _ = Task.Run(() => Run(job));
    }

    private async Task Run(Job job)
    {
        JobOutcome outcome;
        try
        {
            try
            {
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(job.FinishNow.Token, _stopping.Token);
                await Task.Delay(job.RunTime, time, linked.Token);
            }
            catch (OperationCanceledException) when (!_stopping.IsCancellationRequested)
            {
                // CompleteNow: finish early
            }

            _stopping.Token.ThrowIfCancellationRequested();
            outcome = await Produce(job, _stopping.Token);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            return;
        }
#pragma warning disable CA1031 // a failing generation becomes a failed job, as a model crash does upstream
        catch (Exception ex)
#pragma warning restore CA1031
        {
            LogGenerationFailed(logger, ex, job.Id);
            var body = JsonSerializer.SerializeToUtf8Bytes(new ErrorResponse("Internal server error", "internal_error"), EmulatorJson.Default.ErrorResponse);
            outcome = new JobOutcome(StatusCodes.Status500InternalServerError, body, "Internal server error", "internal_error");
        }

        lock (_gate)
        {
            _running--;
        }

        Complete(job, outcome);
        Pump();
    }

    private void Complete(Job job, JobOutcome outcome)
    {
        var now = time.GetUtcNow();
        lock (_gate)
        {
            job.Outcome = outcome;
            job.CompletedAt = now;
            job.Phase = JobPhase.Completed;
            job.Log(outcome.Error is null ? "Image generation finished" : $"Request failed: {outcome.Error}", now,
                outcome.Error is null ? "INFO" : "ERROR");
            SignalChanged();
        }

        job.Completed.TrySetResult();
        webhooks.Send(job);
    }

    private async Task<JobOutcome> Produce(Job job, CancellationToken ct)
    {
        switch (job.Directives.OutcomeFault)
        {
            case FaultKinds.ContentPolicy:
                return ValidationOutcome(FalErrors.ContentPolicyIssue(), FalErrors.ContentPolicyMessage, "content_policy_violation");
            case "422":
                return ValidationOutcome(FalErrors.FaultValidationIssue(), "Unprocessable Entity", "validation_error");
        }

        var input = job.Input;
        using var source = input.IsEdit && input.ImageUrls.Count > 0
            ? await imageSource.Load(input.ImageUrls[0], ct)
            : null;
        var autoSize = source is null ? ((int, int)?)null : (source.Width, source.Height);
        var (width, height) = ImageGenerator.Dimensions(input.AspectRatio, options.ImageLongSide, autoSize);

        var images = new List<ImageFile>(input.NumImages);
        var expiresAt = time.GetUtcNow() + job.Storage.ObjectExpiration;
        for (var i = 0; i < input.NumImages; i++)
        {
            ct.ThrowIfCancellationRequested();
            var image = ImageGenerator.Generate(input.Prompt, i, input.OutputFormat, width, height, job.Directives.Noise, source);
            var name = $"{Guid.NewGuid():N}.{image.Extension}";
            string url;
            if (input.SyncMode)
            {
                url = $"data:{image.ContentType};base64,{Convert.ToBase64String(image.Bytes)}";
            }
            else
            {
                files.Put(name, new StoredFile(image.Bytes, image.ContentType, job.Id, expiresAt));
                job.Files.Add(name);
                url = $"{job.Root}/files/{name}";
            }

            images.Add(new ImageFile(url, image.ContentType, name, image.Bytes.LongLength, image.Width, image.Height));
        }

        var description = input.IsEdit ? $"An edited image: {input.Prompt}" : $"A generated image: {input.Prompt}";
        var output = JsonSerializer.SerializeToUtf8Bytes(new ModelOutput(images, description), EmulatorJson.Default.ModelOutput);
        return new JobOutcome(StatusCodes.Status200OK, output);
    }

    private static JobOutcome ValidationOutcome(ValidationIssue issue, string error, string errorType) =>
        new(StatusCodes.Status422UnprocessableEntity,
            JsonSerializer.SerializeToUtf8Bytes(new ValidationErrorResponse([issue]), EmulatorJson.Default.ValidationErrorResponse),
            error, errorType);

    // Called under _gate.
    private void SignalChanged()
    {
        var previous = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        previous.TrySetResult();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Generation for {RequestId} failed")]
    private static partial void LogGenerationFailed(ILogger logger, Exception exception, string requestId);
}

/// <summary>Reads an edit's input image: data URIs, the stand-in's own files, or any reachable http(s) URL.</summary>
internal sealed class ImageSource(FileStore files) : IDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(3) };

    public async Task<SKBitmap?> Load(string url, CancellationToken ct)
    {
        var bytes = await Read(url, ct);
        return bytes is null ? null : SKBitmap.Decode(bytes);
    }

    public void Dispose() => _http.Dispose();

    private async Task<byte[]?> Read(string url, CancellationToken ct)
    {
        if (url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            var comma = url.IndexOf(',', StringComparison.Ordinal);
            if (comma < 0 || !url[..comma].EndsWith(";base64", StringComparison.OrdinalIgnoreCase))
            {
                return null;
            }

            try
            {
                return Convert.FromBase64String(url[(comma + 1)..]);
            }
            catch (FormatException)
            {
                return null;
            }
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            return null;
        }

        // Our own CDN is read directly, so the edit works whichever host name the file URL carries.
        const string filesPrefix = "/files/";
        if (uri.AbsolutePath.StartsWith(filesPrefix, StringComparison.Ordinal)
            && files.Get(Uri.UnescapeDataString(uri.AbsolutePath[filesPrefix.Length..]), DateTimeOffset.UtcNow) is { } stored)
        {
            return stored.Bytes;
        }

        try
        {
            return await _http.GetByteArrayAsync(uri, ct);
        }
        catch (HttpRequestException)
        {
            return null;
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            return null;
        }
    }
}
