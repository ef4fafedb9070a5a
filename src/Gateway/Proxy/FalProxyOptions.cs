using System.ComponentModel.DataAnnotations;

namespace Gateway.Proxy;

/// <summary>The fal client proxy route <c>/api/fal/proxy</c> (section <c>FalProxy</c>).</summary>
public sealed class FalProxyOptions
{
    public const string SectionName = "FalProxy";

    /// <summary>Also forward synchronous <c>fal.run</c> calls (<c>fal.run(...)</c> in the client); they bypass the queue and ownership.</summary>
    public bool AllowRun { get; set; }

    /// <summary>Answer as <c>@fal-ai/serverless-proxy</c> 0.x did: 400 "Missing the x-fal-target-url header", 412 for a target not allowed.</summary>
    public bool LegacyStatusCodes { get; set; }

    /// <summary>How long a forwarded call (e.g. a status stream between pings) may stay silent before it is cut.</summary>
    [Range(typeof(TimeSpan), "00:00:05", "01:00:00")]
    public TimeSpan ActivityTimeout { get; set; } = TimeSpan.FromMinutes(2);
}
