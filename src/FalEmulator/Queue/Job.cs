using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace FalEmulator;

internal enum JobPhase { Queued, Running, Completed }

/// <summary>A validated model input.</summary>
internal sealed record GenerationInput(
    string Prompt,
    int NumImages,
    string AspectRatio,
    string OutputFormat,
    bool SyncMode,
    IReadOnlyList<string> ImageUrls,
    bool IsEdit);

/// <summary>
/// What a submit asked of fal's storage: <c>X-Fal-Object-Lifecycle-Preference</c> (<c>{"expiration_duration_seconds": N}</c>:
/// the job's output files expire N seconds after they are made) and <c>X-Fal-Store-IO: 0</c> (keep no copy of the payloads).
/// </summary>
public sealed record StoragePreferences(TimeSpan? ObjectExpiration, bool StoreIO)
{
    public static readonly StoragePreferences Default = new(null, true);

    public static StoragePreferences From(IHeaderDictionary headers)
    {
        TimeSpan? expiration = null;
        if (headers["X-Fal-Object-Lifecycle-Preference"].FirstOrDefault() is { Length: > 0 } lifecycle)
        {
            try
            {
                if (JsonNode.Parse(lifecycle) is JsonObject preference
                    && preference["expiration_duration_seconds"] is JsonValue value && value.TryGetValue<double>(out var seconds) && seconds > 0)
                {
                    expiration = TimeSpan.FromSeconds(seconds);
                }
            }
            catch (System.Text.Json.JsonException)
            {
                // unreadable: fal's default retention applies
            }
        }

        return new StoragePreferences(expiration, headers["X-Fal-Store-IO"].FirstOrDefault()?.Trim() != "0");
    }
}

/// <summary>What the model answered: the status code and JSON body the result call replays.</summary>
internal sealed record JobOutcome(int StatusCode, byte[] Body, string? Error = null, string? ErrorType = null, string? TimeoutType = null)
{
    public JsonNode? Payload() => JsonNode.Parse(Body);
}

internal sealed class Job(
    string id,
    string endpoint,
    string app,
    string root,
    GenerationInput input,
    PromptDirectives directives,
    string? webhookUrl,
    TimeSpan runTime,
    DateTimeOffset submittedAt,
    StoragePreferences? storage = null)
{
    private readonly Lock _gate = new();
    private readonly List<LogEntry> _logs = [];

    public string Id { get; } = id;

    public string GatewayRequestId { get; } = id;

    /// <summary>The full model id submitted to, sub-path included.</summary>
    public string Endpoint { get; } = endpoint;

    /// <summary>owner/app only: what status, result and cancel URLs use.</summary>
    public string App { get; } = app;

    /// <summary>Scheme, host and path base the submit came in on.</summary>
    public string Root { get; } = root;

    public GenerationInput Input { get; } = input;

    public PromptDirectives Directives { get; } = directives;

    public string? WebhookUrl { get; } = webhookUrl;

    public StoragePreferences Storage { get; } = storage ?? StoragePreferences.Default;

    /// <summary>The names of the files its output put on the CDN, in the order of its images (none with sync_mode).</summary>
    public List<string> Files { get; } = [];

    public TimeSpan RunTime { get; } = runTime;

    public DateTimeOffset SubmittedAt { get; } = submittedAt;

    public JobPhase Phase { get; set; }

    public bool Eligible { get; set; }

    public bool CancelRequested { get; set; }

    public DateTimeOffset? StartedAt { get; set; }

    public DateTimeOffset? CompletedAt { get; set; }

    public JobOutcome? Outcome { get; set; }

    public CancellationTokenSource FinishNow { get; } = new();

    public TaskCompletionSource Completed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string ResponseUrl => $"{Root}/{App}/requests/{Id}";

    public string StatusUrl => $"{ResponseUrl}/status";

    public string CancelUrl => $"{ResponseUrl}/cancel";

    public IReadOnlyList<LogEntry> Logs
    {
        get
        {
            lock (_gate)
            {
                return [.. _logs];
            }
        }
    }

    public void Log(string message, DateTimeOffset at, string level = "INFO")
    {
        lock (_gate)
        {
            _logs.Add(new LogEntry(message, level, "stdout", at.UtcDateTime.ToString("O", System.Globalization.CultureInfo.InvariantCulture)));
        }
    }
}
