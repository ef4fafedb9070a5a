namespace FalEmulator;

/// <summary>Settings of the fal stand-in; bound from the "FalEmulator" section when run standalone.</summary>
public sealed class FalEmulatorOptions
{
    public const string SectionName = "FalEmulator";

    /// <summary>The accepted FAL key: requests need "Authorization: Key &lt;Key&gt;".</summary>
    public string Key { get; set; } = "emulator-key";

    /// <summary>Minimum time a job stays IN_QUEUE.</summary>
    public TimeSpan QueueTime { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Time a job stays IN_PROGRESS (a prompt's [[run:MS]] overrides it).</summary>
    public TimeSpan RunTime { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Jobs running at once; the others wait IN_QUEUE.</summary>
    public int MaxConcurrent { get; set; } = 2;

    /// <summary>Long side in pixels of generated images.</summary>
    public int ImageLongSide { get; set; } = 1024;

    /// <summary>How long a "slow" fault stalls an answer.</summary>
    public TimeSpan SlowDelay { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan WebhookDelay { get; set; } = TimeSpan.Zero;

    public string WebhookUserId { get; set; } = "emulator-user";

    /// <summary>Faults by setting, checked per operation.</summary>
    public List<FaultRule> Faults { get; set; } = [];

    /// <summary>How often the status stream sends a ": ping" comment.</summary>
    public TimeSpan StreamPingInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Delivery attempts per webhook (fal makes 10 over about 2 h; the stand-in retries quickly).</summary>
    public int WebhookAttempts { get; set; } = 3;

    /// <summary>Pause before the first retry of a failed webhook delivery; doubles per retry.</summary>
    public TimeSpan WebhookRetryBackoff { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Extra wait applied by the webhook "delay" fault.</summary>
    public TimeSpan WebhookFaultDelay { get; set; } = TimeSpan.FromSeconds(2);

    internal void Validate()
    {
        Check(!string.IsNullOrWhiteSpace(Key), nameof(Key), "must not be empty");
        Check(QueueTime >= TimeSpan.Zero, nameof(QueueTime), "must not be negative");
        Check(RunTime >= TimeSpan.Zero, nameof(RunTime), "must not be negative");
        Check(MaxConcurrent >= 1, nameof(MaxConcurrent), "must be at least 1");
        Check(ImageLongSide is >= 8 and <= 4096, nameof(ImageLongSide), "must be between 8 and 4096");
        Check(SlowDelay >= TimeSpan.Zero, nameof(SlowDelay), "must not be negative");
        Check(WebhookDelay >= TimeSpan.Zero, nameof(WebhookDelay), "must not be negative");
        Check(StreamPingInterval > TimeSpan.Zero, nameof(StreamPingInterval), "must be positive");
        Check(WebhookAttempts >= 1, nameof(WebhookAttempts), "must be at least 1");
        Check(Faults.TrueForAll(f => FaultKinds.IsKnown(f.Operation, f.Kind)), nameof(Faults), "has a rule with an unknown Kind");
    }

    private static void Check(bool ok, string setting, string problem)
    {
        if (!ok)
        {
            throw new InvalidOperationException($"Setting {SectionName}:{setting} {problem}.");
        }
    }
}

/// <summary>The calls a fault can hit; Download is a GET of a file on the CDN (/files/…), as the gateway copies results.</summary>
public enum FalOperation { Submit, Status, StatusStream, Result, Cancel, Upload, Webhook, Run, Download }

/// <summary>A fault injected by setting: fires on <see cref="Operation"/> <see cref="Count"/> times (-1 = forever).</summary>
public sealed class FaultRule
{
    public FalOperation Operation { get; set; }

    /// <summary>"401","402","422","content_policy","429","500","502","503","504","slow","drop"; for Webhook: "drop","duplicate","corrupt","delay".</summary>
    public string Kind { get; set; } = "";

    public int Count { get; set; } = -1;

    public string? RequestId { get; set; }
}
