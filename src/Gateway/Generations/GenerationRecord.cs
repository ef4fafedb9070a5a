
namespace Gateway.Generations;

/// <summary>What the gateway keeps about one generation: who owns it, where fal tracks it, and how it ended.</summary>
/// <remarks>Read tolerantly: members of older records that are no longer kept (<c>sync_mode</c>) are skipped.</remarks>
internal sealed record GenerationRecord
{
    public required string Id { get; init; }
    public required string Client { get; init; }

    /// <summary>The user of the client's app who submitted it (signed in with an access token); null for a client key.</summary>
    public string? User { get; init; }

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

    /// <summary>
    /// Whether the result's images were copied to the gateway's image store (<see cref="ImageCopyState"/>); null when no
    /// store was configured as the generation completed, so its images stay where fal put them.
    /// </summary>
    public string? ImageCopy { get; init; }

    /// <summary>The copies, one per image of the result in its order, once <see cref="ImageCopy"/> is stored.</summary>
    public IReadOnlyList<StoredImage>? StoredImages { get; init; }

    /// <summary>Copy attempts that failed so far (each retried until the configured number of attempts).</summary>
    public int ImageCopyAttempts { get; init; }

    /// <summary>The prompt as submitted (null in records written before prompts were kept).</summary>
    public string? Prompt { get; init; }

    /// <summary>The options the caller chose (null in records written before they were kept).</summary>
    public GenerationChoices? Options { get; init; }

    /// <summary>Once completed, what the history shows of each image (null while pending, and in older records).</summary>
    public IReadOnlyList<RecordedImage>? Images { get; init; }

    public bool IsTerminal => GenerationStatus.IsTerminal(Status);
}

/// <summary>Where a completed generation's images are served from: <c>image_copy</c> in the Generation.</summary>
public static class ImageCopyState
{
    /// <summary>Being copied: the result still shows fal's URLs, which become the gateway's once copied.</summary>
    public const string Pending = "pending";

    /// <summary>In the gateway's image store: the result shows the gateway's URLs.</summary>
    public const string Stored = "stored";

    /// <summary>Every attempt failed: the result keeps fal's URLs (which expire).</summary>
    public const string Failed = "failed";
}

/// <summary>One image in the gateway's image store: what was checked while copying it, and its ETag.</summary>
/// <param name="ContentType">The type its bytes were found to be (and the result declared).</param>
/// <param name="Length">Its size in bytes.</param>
/// <param name="Sha256">The lowercase hex SHA-256 of its bytes: its ETag.</param>
internal sealed record StoredImage(string ContentType, long Length, string Sha256);

/// <summary>
/// One result image as the record keeps it for the history: its URL when fal returned one, null when it came as a
/// data URI (megabytes that belong in the result, not in every history page).
/// </summary>
internal sealed record RecordedImage(string? Url, string? ContentType, string? FileName, long? FileSize, int? Width, int? Height);
