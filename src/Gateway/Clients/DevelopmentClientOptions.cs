namespace Gateway.Clients;

/// <summary>The Development client key (section <c>Gateway</c>, shared with the other features; the name is unchanged).</summary>
public sealed class DevelopmentClientOptions
{
    public const string SectionName = "Gateway";

    /// <summary>Accepted as client <c>local</c> in Development when no clients are configured.</summary>
    public string DevelopmentClientKey { get; set; } = "dev-local-key";
}
