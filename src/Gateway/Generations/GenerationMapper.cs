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
        GenerationLinks.For(record.Id),
        record.Status == GenerationStatus.Completed ? record.ImageCopy : null);

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
