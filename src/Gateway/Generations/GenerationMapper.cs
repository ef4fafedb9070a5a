using System.Runtime.CompilerServices;
using Gateway.Links;
using Gateway.Upstream;

namespace Gateway.Generations;

/// <summary>From what the gateway stores and fal says to what clients read; signs the links a page opens without headers.</summary>
internal sealed class GenerationMapper(LinkTickets tickets)
{
    /// <summary>
    /// A record's plain routes, made once per record instance (records are immutable; the read cache hands the same
    /// instance to every poll of an ended generation): a poll's answer built five strings from the id (issue 13).
    /// </summary>
    private readonly ConditionalWeakTable<GenerationRecord, GenerationLinks> _plainLinks = [];

    public GenerationResponse ToResponse(GenerationRecord record, FalStatus? live) => new(
        record.Id,
        record.Model,
        CurrentStatus(record, live),
        QueuePosition(record, live),
        record.CreatedAt,
        record.CompletedAt,
        record.Error,
        LinksFor(record),
        ImageCopy: record.Status == GenerationStatus.Completed ? record.ImageCopy : null,
        User: record.User);

    /// <summary>
    /// The history's view: no fal call, the images as stored (a data-URI image is shown by its result link; an image copied to the
    /// gateway's image store by the gateway's link, as the result shows it).
    /// </summary>
    public GenerationHistoryItem ToHistoryItem(GenerationRecord record, IReadOnlyList<RecordedImage>? images, Func<int, string> storedImageUrl)
    {
        var links = LinksFor(record);
        var stored = record.ImageCopy == ImageCopyState.Stored && record.StoredImages is not null;
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
                ? [.. images.Select((i, n) => stored && n < record.StoredImages!.Count
                    ? new HistoryImage(storedImageUrl(n), false, record.StoredImages[n].ContentType, i.FileName, record.StoredImages[n].Length, i.Width, i.Height)
                    : new HistoryImage(i.Url ?? links.Result, i.Url is null, i.ContentType, i.FileName, i.FileSize, i.Width, i.Height))]
                : null,
            ImageCopy: record.Status == GenerationStatus.Completed ? record.ImageCopy : null,
            User: record.User);
    }

    public StatusResponse ToStatus(GenerationSnapshot snapshot, bool logs) => new(
        snapshot.Record.Id,
        CurrentStatus(snapshot.Record, snapshot.Live),
        QueuePosition(snapshot.Record, snapshot.Live),
        logs ? snapshot.Live?.Logs ?? [] : null,
        LinksFor(snapshot.Record));

    /// <summary>The routes of the generation; <c>events</c> carries a ticket for the record's owner, for the browser's EventSource.</summary>
    private GenerationLinks LinksFor(GenerationRecord record)
    {
        var links = _plainLinks.GetValue(record, static r => GenerationLinks.For(r.Id));
        return tickets.Enabled
            ? links with { Events = tickets.Append(links.Events, new LinkScope(record.Id, GenerationLinks.EventsResource, record.Client, record.User)) }
            : links;
    }

    internal static int? QueuePosition(GenerationRecord record, FalStatus? live) =>
        record.IsTerminal ? null : live?.QueuePosition ?? (live is null ? record.QueuePosition : null);

    internal static string CurrentStatus(GenerationRecord record, FalStatus? live) =>
        record.IsTerminal || live is null ? record.Status
        : live.Status == FalStatus.InProgress ? GenerationStatus.InProgress
        : GenerationStatus.InQueue;
}
