using System.Collections.Concurrent;
using System.IO.Compression;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Gateway.Tests.Infrastructure.Otlp;

/// <summary>One span as the receiver decoded it, with the resource it came from.</summary>
public sealed record ReceivedSpan(IReadOnlyDictionary<string, string> Resource, string Scope, Span Span)
{
    public string Name => Span.Name;

    public SpanKind Kind => Span.Kind;

    public string TraceId => Convert.ToHexStringLower(Span.TraceId.Span);

    public string? Attribute(string key) => Span.Attributes.FirstOrDefault(a => a.Key == key)?.Value is { } value ? OtlpReceiver.Text(value) : null;

    public override string ToString() =>
        $"{Kind} '{Name}' ({Scope}) trace {TraceId} {{{string.Join(", ", Span.Attributes.Select(a => $"{a.Key}={OtlpReceiver.Text(a.Value)}"))}}}";
}

/// <summary>
/// An OTLP/HTTP receiver on a loopback port (protobuf, as the .NET exporter sends with
/// <c>OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf</c>): decodes what arrives on <c>/v1/traces</c> and <c>/v1/metrics</c>
/// and keeps it for the test to look at.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ReceivedSpan> _spans = new();
    private readonly ConcurrentQueue<(IReadOnlyDictionary<string, string> Resource, Metric Metric)> _metrics = new();
    private int _traceRequests;
    private int _metricRequests;

    private OtlpReceiver(WebApplication app) => _app = app;

    /// <summary>The base URL, e.g. <c>http://127.0.0.1:41234</c>; the signals go to <c>/v1/traces</c> and <c>/v1/metrics</c> under it.</summary>
    public string Url { get; private set; } = "";

    public IReadOnlyCollection<ReceivedSpan> Spans => [.. _spans];

    public IReadOnlyCollection<(IReadOnlyDictionary<string, string> Resource, Metric Metric)> Metrics => [.. _metrics];

    public int TraceRequests => Volatile.Read(ref _traceRequests);

    public int MetricRequests => Volatile.Read(ref _metricRequests);

    public static async Task<OtlpReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(System.Net.IPAddress.Loopback, 0));
        var receiver = new OtlpReceiver(builder.Build());
        receiver._app.MapPost("/v1/traces", async (HttpContext context) =>
        {
            var request = ExportTraceServiceRequest.Parser.ParseFrom(await BodyAsync(context));
            foreach (var resourceSpans in request.ResourceSpans)
            {
                var resource = Attributes(resourceSpans.Resource);
                foreach (var scope in resourceSpans.ScopeSpans)
                {
                    foreach (var span in scope.Spans)
                    {
                        receiver._spans.Enqueue(new ReceivedSpan(resource, scope.Scope?.Name ?? "", span));
                    }
                }
            }

            Interlocked.Increment(ref receiver._traceRequests);
            return Results.Bytes([], "application/x-protobuf"); // an empty ExportTraceServiceResponse: all accepted
        });
        receiver._app.MapPost("/v1/metrics", async (HttpContext context) =>
        {
            var request = ExportMetricsServiceRequest.Parser.ParseFrom(await BodyAsync(context));
            foreach (var resourceMetrics in request.ResourceMetrics)
            {
                var resource = Attributes(resourceMetrics.Resource);
                foreach (var metric in resourceMetrics.ScopeMetrics.SelectMany(s => s.Metrics))
                {
                    receiver._metrics.Enqueue((resource, metric));
                }
            }

            Interlocked.Increment(ref receiver._metricRequests);
            return Results.Bytes([], "application/x-protobuf");
        });
        await receiver._app.StartAsync();
        receiver.Url = receiver._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return receiver;
    }

    /// <summary>Polls until <paramref name="done"/> holds for what arrived, or the time is up; returns whether it held.</summary>
    public async Task<bool> WaitForAsync(Func<OtlpReceiver, bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!done(this))
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        return true;
    }

    public static string Text(AnyValue value) => value.ValueCase switch
    {
        AnyValue.ValueOneofCase.StringValue => value.StringValue,
        AnyValue.ValueOneofCase.BoolValue => value.BoolValue ? "true" : "false",
        AnyValue.ValueOneofCase.IntValue => value.IntValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
        AnyValue.ValueOneofCase.DoubleValue => value.DoubleValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => "",
    };

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private static Dictionary<string, string> Attributes(Resource? resource) =>
        resource?.Attributes.ToDictionary(a => a.Key, a => Text(a.Value)) ?? [];

    private static async Task<byte[]> BodyAsync(HttpContext context)
    {
        using var buffer = new MemoryStream();
        var body = context.Request.Headers.ContentEncoding == "gzip" ? new GZipStream(context.Request.Body, CompressionMode.Decompress) : context.Request.Body;
        await body.CopyToAsync(buffer, context.RequestAborted);
        return buffer.ToArray();
    }
}
