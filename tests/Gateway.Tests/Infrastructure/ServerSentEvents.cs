using System.Text;

namespace Gateway.Tests.Infrastructure;

public sealed record ServerSentEvent(string? Id, string Event, string Data);

/// <summary>Reads a raw text/event-stream as the SSE specification frames it: fields, blank-line dispatch, comments.</summary>
public sealed class ServerSentEventReader(Stream stream)
{
    private readonly StreamReader _reader = new(stream, Encoding.UTF8);

    public List<string> Comments { get; } = [];

    public List<string> RetryHints { get; } = [];

    /// <summary>The next event, or null when the stream ends.</summary>
    public async Task<ServerSentEvent?> NextAsync(CancellationToken cancellationToken)
    {
        string? id = null, name = null;
        var data = new StringBuilder();
        var any = false;
        while (await _reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length == 0)
            {
                if (any)
                {
                    return new ServerSentEvent(id, name ?? "message", data.ToString());
                }

                continue;
            }

            if (line.StartsWith(':'))
            {
                Comments.Add(line[1..].Trim());
                continue;
            }

            var colon = line.IndexOf(':', StringComparison.Ordinal);
            var field = colon < 0 ? line : line[..colon];
            var value = colon < 0 ? "" : line[(colon + 1)..].TrimStart(' ');
            switch (field)
            {
                case "id": id = value; any = true; break;
                case "event": name = value; any = true; break;
                case "data": data.Append(data.Length > 0 ? "\n" : "").Append(value); any = true; break;
                case "retry": RetryHints.Add(value); break;
                default: throw new InvalidOperationException($"unexpected SSE field '{field}' in line '{line}'");
            }
        }

        return null;
    }

    public async Task<List<ServerSentEvent>> ReadAllAsync(CancellationToken cancellationToken)
    {
        var events = new List<ServerSentEvent>();
        while (await NextAsync(cancellationToken) is { } next)
        {
            events.Add(next);
        }

        return events;
    }
}
