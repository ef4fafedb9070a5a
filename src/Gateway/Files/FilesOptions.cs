using System.ComponentModel.DataAnnotations;

namespace Gateway.Files;

/// <summary>The settings of file uploads (section <c>Gateway</c>, shared with the other features; names unchanged).</summary>
public sealed class FilesOptions
{
    public const string SectionName = "Gateway";

    /// <summary>Largest file accepted by <c>POST /v1/files</c>.</summary>
    [Range(1, 1024L * 1024 * 1024)]
    public long MaxUploadBytes { get; set; } = 10 * 1024 * 1024;
}
