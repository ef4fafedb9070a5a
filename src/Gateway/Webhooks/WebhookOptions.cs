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

    /// <summary>When no cached key verifies a signature, the keys are refetched at most this often.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan JwksRefetchInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Largest webhook body (sync_mode payloads carry whole images).</summary>
    [Range(1024, 1024L * 1024 * 1024)]
    public long MaxBodyBytes { get; set; } = 128 * 1024 * 1024;
}
