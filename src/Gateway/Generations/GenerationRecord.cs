
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

    public bool IsTerminal => GenerationStatus.IsTerminal(Status);
}
