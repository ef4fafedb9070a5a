using Gateway.Storage;
using Gateway.Upstream;

namespace Gateway.Generations;

/// <summary>From what the gateway stores and fal says to what clients read.</summary>
internal static class GenerationMapper
{
    public static GenerationResponse ToResponse(GenerationRecord record, FalStatus? live) => new(
        record.Id,
        record.Model,
        CurrentStatus(record, live),
        record.IsTerminal ? null : live?.QueuePosition ?? (live is null ? record.QueuePosition : null),
        record.CreatedAt,
        record.CompletedAt,
        record.Error,
        GenerationLinks.For(record.Id));

    /// <summary>The history's view: no fal call, the images as stored (a data-URI image is shown by its result link).</summary>
    public static GenerationHistoryItem ToHistoryItem(GenerationRecord record, IReadOnlyList<StoredImage>? images)
    {
        var links = GenerationLinks.For(record.Id);
        return new GenerationHistoryItem(
            record.Id,
            record.Model,
            record.Status,
            record.IsTerminal ? null : record.QueuePosition,
            record.CreatedAt,
            record.CompletedAt,
            record.Error,
            links,
            record.Prompt,
            record.Options ?? new GenerationChoices(null, null, null, null),
            record.Status == GenerationStatus.Completed && images is not null
                ? [.. images.Select(i => new HistoryImage(i.Url ?? links.Result, i.Url is null, i.ContentType, i.FileName, i.FileSize, i.Width, i.Height))]
                : null);
    }

    public static StatusResponse ToStatus(GenerationSnapshot snapshot, bool logs)
    {
        var response = ToResponse(snapshot.Record, snapshot.Live);
        return new StatusResponse(response.Id, response.Status, response.QueuePosition,
            logs ? snapshot.Live?.Logs ?? [] : null, response.Links);
    }

    private static string CurrentStatus(GenerationRecord record, FalStatus? live) =>
        record.IsTerminal || live is null ? record.Status
        : live.Status == FalStatus.InProgress ? GenerationStatus.InProgress
        : GenerationStatus.InQueue;
}
