using Gateway.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace Gateway.Tests.Infrastructure;

/// <summary>
/// Wraps an in-process gateway's whole pipeline: every answer it sends, to any caller (the tests' HttpClients, node's
/// fal client, the stand-in's webhook deliveries, raw sockets), is copied as it is written and checked against the
/// contract once complete. Answers the caller abandoned (it went away) are not checked: nobody read them.
/// </summary>
internal sealed class ContractCheckStartupFilter(ContractViolations violations) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use(async (context, nextMiddleware) =>
        {
            var original = context.Response.Body;
            var copy = new CopyingStream(original);
            context.Response.Body = copy;
            try
            {
                await nextMiddleware(context);
            }
            finally
            {
                context.Response.Body = original;
            }

            if (context.RequestAborted.IsCancellationRequested)
            {
                return;
            }

            var headers = context.Response.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
            violations.Check(new ObservedAnswer(
                context.Request.Method, context.Request.Path.Value ?? "/", context.Response.StatusCode, context.Response.ContentType, headers, copy.Copied));
        });
        next(app);
    };

    /// <summary>Passes every write on and keeps a copy of it.</summary>
    private sealed class CopyingStream(Stream inner) : WriteThroughStream(inner)
    {
        private readonly MemoryStream _copy = new();

        public byte[] Copied => _copy.ToArray();

        public override void Write(byte[] buffer, int offset, int count)
        {
            _copy.Write(buffer, offset, count);
            Inner.Write(buffer, offset, count);
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _copy.Write(buffer.Span);
            await Inner.WriteAsync(buffer, cancellationToken);
        }
    }
}

/// <summary>
/// The contract check on the client side, for a gateway running as its own process: each answer is checked as it
/// arrives (JSON bodies are read in full first; an event stream's status and type only, so the test can still stream it).
/// </summary>
public sealed class ContractCheckingHandler(ContractViolations violations, HttpMessageHandler inner) : DelegatingHandler(inner)
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken);
        var media = response.Content.Headers.ContentType?.MediaType;
        var streamed = media == "text/event-stream";
        var body = Array.Empty<byte>();
        if (!streamed)
        {
            await response.Content.LoadIntoBufferAsync(cancellationToken);
            body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        }

        var headers = response.Headers.Concat(response.Content.Headers)
            .ToDictionary(h => h.Key, h => string.Join(", ", h.Value), StringComparer.OrdinalIgnoreCase);
        violations.Check(new ObservedAnswer(
            request.Method.Method, request.RequestUri!.AbsolutePath, (int)response.StatusCode,
            response.Content.Headers.ContentType?.ToString(), headers, body, BodyRead: !streamed));
        return response;
    }
}
