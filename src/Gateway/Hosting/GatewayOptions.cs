using System.ComponentModel.DataAnnotations;

namespace Gateway.Hosting;

/// <summary>The hosting settings: request size, Swagger and shutdown (section <c>Gateway</c>; the features bind their own settings from it too).</summary>
public sealed class GatewayOptions
{
    public const string SectionName = "Gateway";

    /// <summary>Largest request body on the JSON routes.</summary>
    [Range(1024, 1024L * 1024 * 1024)]
    public long MaxRequestBodyBytes { get; set; } = 32 * 1024 * 1024;

    public bool SwaggerEnabled { get; set; } = true;

    /// <summary>After SIGTERM: how long readiness answers 503 while the replica still serves, before the server stops.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:05:00")]
    public TimeSpan ShutdownDrainDelay { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>After SIGTERM: the most the whole shutdown (drain, then in-flight requests) may take.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);
}
