using System.ComponentModel.DataAnnotations;

namespace Gateway.Upstream;

/// <summary>How the gateway reaches fal (section <c>Fal</c>). The key never leaves this object except as a header to fal.</summary>
public sealed class FalOptions : IValidatableObject
{
    public const string SectionName = "Fal";

    public string? Key { get; set; }
    public string? KeyId { get; set; }
    public string? KeySecret { get; set; }

    public string Model { get; set; } = "microsoft/mai-image-2.5";
    public string QueueBaseUrl { get; set; } = "https://queue.fal.run";
    public string RestBaseUrl { get; set; } = "https://rest.fal.ai";
    public string RunBaseUrl { get; set; } = "https://fal.run";
    public string JwksUrl { get; set; } = "https://rest.alpha.fal.ai/.well-known/jwks.json";

    /// <summary>Start the fal stand-in in-process and point every base URL at it (Development).</summary>
    public bool UseEmulator { get; set; }

    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(10);

    [Range(typeof(TimeSpan), "00:00:00.100", "00:30:00")]
    public TimeSpan TotalTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long reading a (possibly many-MB) result body may take once fal has answered.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:30:00")]
    public TimeSpan ResultReadTimeout { get; set; } = TimeSpan.FromMinutes(2);

    [Range(0, 10)]
    public int MaxReadRetries { get; set; } = 3;

    /// <summary>Base delay of the exponential, jittered backoff between read retries.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:01:00")]
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How many calls in the sampling window before failures can open the circuit (then 503 fast).</summary>
    [Range(2, 100_000)]
    public int CircuitBreakerMinimumThroughput { get; set; } = 100;

    public string EditModel => Model + "/edit";

    /// <summary><c>owner/app</c>: status, result and cancel live under it, whatever sub-path was submitted.</summary>
    public string AppId => string.Join('/', Model.Split('/').Take(2));

    /// <summary>The value of the <c>Authorization: Key …</c> header.</summary>
    internal string? EffectiveKey =>
        !string.IsNullOrWhiteSpace(Key) ? Key
        : !string.IsNullOrWhiteSpace(KeyId) && !string.IsNullOrWhiteSpace(KeySecret) ? $"{KeyId}:{KeySecret}"
        : null;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (EffectiveKey is null && !UseEmulator)
        {
            yield return new ValidationResult(
                "No FAL key is configured: set Fal__Key (or FAL_KEY, or FAL_KEY_ID and FAL_KEY_SECRET), "
                + "or, in Development, Fal__UseEmulator=true to use the offline fal stand-in.", [nameof(Key)]);
        }

        if (Model.Split('/') is not { Length: >= 2 } parts || parts.Any(string.IsNullOrWhiteSpace))
        {
            yield return new ValidationResult($"Fal__Model must look like 'owner/app', not '{Model}'.", [nameof(Model)]);
        }

        foreach (var (name, value) in new[]
                 {
                     ("Fal__QueueBaseUrl", QueueBaseUrl), ("Fal__RestBaseUrl", RestBaseUrl),
                     ("Fal__RunBaseUrl", RunBaseUrl), ("Fal__JwksUrl", JwksUrl),
                 })
        {
            if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                yield return new ValidationResult($"{name} must be an absolute http(s) URL, not '{value}'.", [name]);
            }
        }
    }
}
