namespace Gateway.Upstream;

/// <summary>
/// fal platform headers every queue submit carries, from <c>/v1</c> and the proxy alike, set by the features that need them
/// (the image store asks fal to keep its copy of the outputs briefly, and no copy of the payloads).
/// </summary>
internal sealed class FalSubmitHeaders
{
    public Dictionary<string, string> Headers { get; } = new(StringComparer.OrdinalIgnoreCase);
}
