using System.Reflection;
using System.Text;
using System.Text.Json;
using Gateway.Hosting;
using Gateway.Upstream;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.Options;

namespace Gateway.Generations;

/// <summary>
/// <c>GET /v1/generations/{id}/events</c>: Server-Sent Events until the job ends. <c>status</c> events
/// whenever the status or queue position changes, then exactly one <c>completed</c> or <c>failed</c>
/// carrying the Generation, then the stream closes. Event ids name the state (<c>q3</c>, <c>p</c>,
/// <c>completed</c>), so <c>Last-Event-ID</c> resumes without repeating what the client saw.
/// </summary>
/// <remarks>Resolved once per request (it uses the request-scoped <see cref="GenerationService"/>).</remarks>
internal sealed class GenerationEventStream(
    GenerationService service,
    GenerationMapper mapper,
    GenerationTicker ticker,
    GatewayMetrics metrics,
    IOptions<GenerationOptions> generationOptions,
    TimeProvider time,
    IHostApplicationLifetime lifetime)
{
    /// <summary>The result an endpoint returns: streams <paramref name="record"/>'s events when executed.</summary>
    public Result For(GenerationRecord record, string? lastEventId) => new(this, record, lastEventId);

    private async Task StreamAsync(HttpContext httpContext, GenerationRecord record, string? lastEventId)
    {
        var options = generationOptions.Value;
        var stopping = lifetime.ApplicationStopping;
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(httpContext.RequestAborted, stopping);
        var token = cancellation.Token;

        if (record.IsTerminal && lastEventId == TerminalId(record))
        {
            httpContext.Response.StatusCode = StatusCodes.Status204NoContent; // seen it all: EventSource stops reconnecting
            return;
        }

        var response = await BeginAsync(httpContext, token);

        using var looks = ticker.Subscribe(record);
        metrics.StreamOpened();
        var sent = lastEventId;
        var lastWrite = time.GetUtcNow();
        try
        {
            while (true)
            {
                var look = looks.Current;
                look.Failure?.Throw();
                if (look.Snapshot is { Record.IsTerminal: true } ended)
                {
                    await WriteTerminalAsync(response, ended, token);
                    return;
                }

                if (look.Snapshot is { } snapshot && await WriteStatusAsync(response, snapshot, sent, token) is { } id)
                {
                    sent = id;
                    lastWrite = time.GetUtcNow();
                }

                var quiet = time.GetUtcNow() - lastWrite;
                if (quiet >= options.EventStreamKeepAlive)
                {
                    await Write(response, ": keep-alive\n\n", token);
                    lastWrite = time.GetUtcNow();
                    quiet = TimeSpan.Zero;
                }

                // Woken by a look that finds another state, or when the keep-alive is due.
                await Task.WhenAny(look.Next, Task.Delay(options.EventStreamKeepAlive - quiet, time, token));
                token.ThrowIfCancellationRequested();
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested && !httpContext.RequestAborted.IsCancellationRequested)
        {
            // The replica is shutting down: tell the client to come back (to another replica) soon.
            await Write(response, "retry: 500\n: server shutting down\n\n", CancellationToken.None);
        }
        catch (OperationCanceledException) when (httpContext.RequestAborted.IsCancellationRequested)
        {
            // The client left.
        }
        finally
        {
            metrics.StreamClosed();
        }
    }

    /// <summary>Starts the event stream: unbuffered, uncached, and telling the client to reconnect after 2 s.</summary>
    private static async Task<HttpResponse> BeginAsync(HttpContext httpContext, CancellationToken token)
    {
        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache, no-transform";
        response.Headers["X-Accel-Buffering"] = "no";
        httpContext.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await Write(response, "retry: 2000\n\n", token);
        return response;
    }

    /// <summary>A <c>status</c> event when the state differs from the one <paramref name="sent"/> last; its id, or null when nothing changed.</summary>
    private async Task<string?> WriteStatusAsync(HttpResponse response, GenerationSnapshot snapshot, string? sent, CancellationToken token)
    {
        var id = EventId(snapshot);
        if (id == sent)
        {
            return null;
        }

        var status = mapper.ToStatus(snapshot, logs: false);
        var json = JsonSerializer.Serialize(status, GenerationJsonContext.Default.StatusResponse);
        await Write(response, $"id: {id}\nevent: status\ndata: {json}\n\n", token);
        return id;
    }

    /// <summary>The id of the event that tells <paramref name="snapshot"/>'s state: <c>q{position}</c>, <c>p</c>, <c>completed</c> or <c>failed</c>.</summary>
    internal static string EventId(GenerationSnapshot snapshot) =>
        snapshot.Record.IsTerminal ? TerminalId(snapshot.Record)
        : GenerationMapper.CurrentStatus(snapshot.Record, snapshot.Live) == GenerationStatus.InQueue
            ? $"q{GenerationMapper.QueuePosition(snapshot.Record, snapshot.Live) ?? 0}"
            : "p";

    private static string TerminalId(GenerationRecord record) =>
        record.Status == GenerationStatus.Completed ? "completed" : "failed";

    private async Task WriteTerminalAsync(HttpResponse response, GenerationSnapshot snapshot, CancellationToken token)
    {
        var terminal = snapshot.Record;
        var eventName = TerminalId(terminal);
        await Write(response, $"id: {eventName}\nevent: {eventName}\ndata: ", token);
        var result = terminal.Status == GenerationStatus.Completed ? await service.GetResultAsync(terminal, token) : null;
        var body = JsonSerializer.SerializeToUtf8Bytes(mapper.ToResponse(terminal, null), GenerationJsonContext.Default.GenerationResponse);
        await using (var data = new SingleLineStream(response.Body))
        {
            await GenerationJson.WriteAsync(data, body, result, service.PartsOf(terminal, response.HttpContext.Request), token);
        }

        await Write(response, "\n\n", token);
    }

    private static async Task Write(HttpResponse response, string text, CancellationToken token)
    {
        await response.Body.WriteAsync(Encoding.UTF8.GetBytes(text), token);
        await response.Body.FlushAsync(token);
    }

    /// <summary>The endpoint's 200 answer: the stream, written by the <see cref="GenerationEventStream"/> that made it.</summary>
    internal sealed class Result(GenerationEventStream stream, GenerationRecord record, string? lastEventId)
        : IResult, IEndpointMetadataProvider
    {
        public Task ExecuteAsync(HttpContext httpContext) => stream.StreamAsync(httpContext, record, lastEventId);

        public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) =>
            builder.Metadata.Add(new ProducesResponseTypeMetadata(StatusCodes.Status200OK, typeof(string), ["text/event-stream"]));
    }

    /// <summary>
    /// An SSE <c>data:</c> field is one line. JSON needs no raw line breaks (inside strings they are
    /// escaped), so any that fal's bytes carry as whitespace become spaces.
    /// </summary>
    private sealed class SingleLineStream(Stream inner) : WriteThroughStream(inner)
    {
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (buffer.Span.IndexOfAny((byte)'\n', (byte)'\r') < 0)
            {
                return Inner.WriteAsync(buffer, cancellationToken);
            }

            var copy = buffer.ToArray();
            for (var i = 0; i < copy.Length; i++)
            {
                if (copy[i] is (byte)'\n' or (byte)'\r')
                {
                    copy[i] = (byte)' ';
                }
            }

            return Inner.WriteAsync(copy, cancellationToken);
        }
    }
}
