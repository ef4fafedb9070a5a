
namespace Gateway.Generations;

/// <summary>What the gateway keeps about one generation: who owns it, where fal tracks it, and how it ended.</summary>
/// <remarks>Read tolerantly: members of older records that are no longer kept (<c>sync_mode</c>) are skipped.</remarks>
internal sealed record GenerationRecord
{
    public required string Id { get; init; }
    public required string Client { get; init; }

    /// <summary>The fal endpoint it was submitted to, with its sub-path (<c>…/edit</c>).</summary>
    public required string Model { get; init; }

    public required string Status { get; init; }
    public int? QueuePosition { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? CompletedAt { get; init; }
    public required string StatusUrl { get; init; }
    public required string ResponseUrl { get; init; }
    public required string CancelUrl { get; init; }
    public int NumImages { get; init; } = 1;
    public GenerationError? Error { get; init; }

    /// <summary>The prompt as submitted (null in records written before prompts were kept).</summary>
    public string? Prompt { get; init; }

    /// <summary>The options the caller chose (null in records written before they were kept).</summary>
    public GenerationChoices? Options { get; init; }

    /// <summary>Once completed, what the history shows of each image (null while pending, and in older records).</summary>
    public IReadOnlyList<StoredImage>? Images { get; init; }

    public bool IsTerminal => GenerationStatus.IsTerminal(Status);
}

/// <summary>
/// One result image as the record keeps it for the history: its URL when fal returned one, null when it came as a
/// data URI (megabytes that belong in the result, not in every history page).
/// </summary>
internal sealed record StoredImage(string? Url, string? ContentType, string? FileName, long? FileSize, int? Width, int? Height);
