using System.ComponentModel.DataAnnotations;

namespace Gateway.Webhooks;

/// <summary>How fal's webhooks are checked (section <c>Webhooks</c>); the JWKS URL is <c>Fal:JwksUrl</c>.</summary>
public sealed class WebhookOptions
{
    public const string SectionName = "Webhooks";

    /// <summary>How far a webhook's timestamp may be from now (fal: 300 s).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan TimestampTolerance { get; set; } = TimeSpan.FromSeconds(300);

    /// <summary>How long fal's public keys are trusted before they are fetched again (at most 24 h).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan JwksCacheTtl { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Least time between two attempts to fetch the keys, failed or not (a refetch is asked for when no key verifies).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan JwksRefetchInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Longest one fetch of the keys may take; it goes on in the background after webhooks stop waiting for it.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:01:00")]
    public TimeSpan JwksFetchTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest a webhook waits for a fetch of the keys before it is answered 503 (fal redelivers).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:10")]
    public TimeSpan JwksWait { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Largest webhook body. sync_mode results carry their images as data URIs: four ~1 MP PNGs come to
    /// 10–20 MB of base64; 48 MiB leaves room, and <see cref="MaxConcurrentBodies"/> of them fit the
    /// deployment's 256 MiB /tmp, where bodies past 1 MiB are buffered until their signature is checked.
    /// </summary>
    [Range(1024, 1024L * 1024 * 1024)]
    public long MaxBodyBytes { get; set; } = 48 * 1024 * 1024;

    /// <summary>How many webhook bodies are read (and buffered) at once; others wait <see cref="BodySlotWait"/>, then 503.</summary>
    [Range(1, 256)]
    public int MaxConcurrentBodies { get; set; } = 4;

    /// <summary>How long a webhook waits for a free body slot before it is answered 503 (fal redelivers).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:30")]
    public TimeSpan BodySlotWait { get; set; } = TimeSpan.FromSeconds(1);
}
