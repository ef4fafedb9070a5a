using System.Text.Json.Nodes;

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
    DateTimeOffset submittedAt)
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
