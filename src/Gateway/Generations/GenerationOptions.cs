using System.ComponentModel.DataAnnotations;

namespace Gateway.Generations;

/// <summary>The settings of generations: input limits, results, waits and the reconciler (section <c>Gateway</c>, shared with the other features; names unchanged).</summary>
public sealed class GenerationOptions : IValidatableObject
{
    public const string SectionName = "Gateway";

    /// <summary>The gateway's URL as fal can reach it; empty: no webhooks, the gateway polls fal itself.</summary>
    public string? PublicBaseUrl { get; set; }

    [Range(1, 100_000)]
    public int MaxPromptLength { get; set; } = 4_000;

    /// <summary>Most entries in an edit's <c>image_urls</c>; fal's edit model takes one and refuses two.</summary>
    [Range(1, 64)]
    public int MaxImageUrls { get; set; } = 1;

    /// <summary>Largest decoded image accepted inside a <c>data:</c> URI in <c>image_urls</c>.</summary>
    [Range(1, 256 * 1024 * 1024)]
    public int MaxImageDataUriBytes { get; set; } = 10 * 1024 * 1024;

    [Range(typeof(TimeSpan), "00:01:00", "365.00:00:00")]
    public TimeSpan ResultTtl { get; set; } = TimeSpan.FromDays(7);

    [Range(typeof(TimeSpan), "00:00:00.050", "00:01:00")]
    public TimeSpan StatusCacheTtl { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Results larger than this keep their data-URI images as separate binary values, not inline.</summary>
    [Range(1024, 512 * 1024 * 1024)]
    public int InlineResultMaxBytes { get; set; } = 256 * 1024;

    /// <summary>
    /// Memory for the records and small results that reads are answered from without Redis (ended generations,
    /// and running ones for StatusCacheTtl); least recently used first out. 0 turns the cache off.
    /// </summary>
    [Range(0, 1024L * 1024 * 1024)]
    public long ReadCacheMaxBytes { get; set; } = 16 * 1024 * 1024;

    [Range(0, 600)]
    public int MaxWaitSeconds { get; set; } = 60;

    /// <summary>How often each replica looks for unfinished generations that are due a look at fal.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan ReconcileInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Shortest and longest wait between two looks at one unfinished generation.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan ReconcileMinDelay { get; set; } = TimeSpan.FromSeconds(1);

    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan ReconcileMaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>With webhooks, how long the reconciler leaves a generation to fal's webhook before polling.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan WebhookGracePeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often event streams send a keep-alive comment.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan EventStreamKeepAlive { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How often an event stream looks at the generation's status while it runs.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:01:00")]
    public TimeSpan EventStreamPollInterval { get; set; } = TimeSpan.FromSeconds(1);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!string.IsNullOrEmpty(PublicBaseUrl)
            && (!Uri.TryCreate(PublicBaseUrl, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")))
        {
            yield return new ValidationResult(
                $"Gateway__PublicBaseUrl must be an absolute http(s) URL, not '{PublicBaseUrl}'.", [nameof(PublicBaseUrl)]);
        }
    }
}
