using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace FalEmulator;

/// <summary>The fal stand-in on a real Kestrel socket: queue, run, storage, JWKS and webhooks.</summary>
public sealed class FalEmulatorHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private FalEmulatorHost(WebApplication app, Uri baseUrl)
    {
        _app = app;
        BaseUrl = baseUrl;
        State = app.Services.GetRequiredService<FalEmulatorState>();
    }

    /// <summary>The bound root, e.g. http://127.0.0.1:43121/.</summary>
    public Uri BaseUrl { get; }

    /// <summary>Stands for https://queue.fal.run.</summary>
    public string QueueBaseUrl => BaseUrl.ToString().TrimEnd('/');

    /// <summary>Stands for https://rest.fal.ai.</summary>
    public string RestBaseUrl => QueueBaseUrl + "/rest";

    /// <summary>Stands for https://fal.run.</summary>
    public string RunBaseUrl => QueueBaseUrl + "/run";

    public string JwksUrl => RestBaseUrl + "/.well-known/jwks.json";

    public FalEmulatorState State { get; }

    public static async Task<FalEmulatorHost> StartAsync(FalEmulatorOptions? options = null, string url = "http://127.0.0.1:0", CancellationToken cancellationToken = default)
    {
        options ??= new FalEmulatorOptions();
        options.Validate();

        // An empty builder: the stand-in must not pick up the host process's appsettings or environment.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions
        {
            ApplicationName = typeof(FalEmulatorHost).Assembly.GetName().Name,
        });
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Limits.MaxRequestBodySize = null);
        builder.WebHost.UseUrls(url);
        builder.Services.AddRoutingCore();
        builder.Services.AddCors();
        builder.Logging.AddSimpleConsole(c => c.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddFalEmulator(options);

        var app = builder.Build();
        app.Use(RecordRequests);
        app.UseCors();
        app.MapControl();
        app.MapJwks();
        app.MapStorage();
        app.MapQueue();
        app.MapFallback(context => FalErrors.Detail(context, StatusCodes.Status404NotFound, "Not Found").ExecuteAsync(context));

        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var bound = new UriBuilder(address);
        if (bound.Host is "0.0.0.0" or "[::]" or "::" or "+" or "*")
        {
            bound.Host = "127.0.0.1";
        }

        var scheduler = app.Services.GetRequiredService<JobScheduler>();
        var state = app.Services.GetRequiredService<FalEmulatorState>();
        state.Scheduler = scheduler;
        state.Files = app.Services.GetRequiredService<FileStore>();
        return new FalEmulatorHost(app, new Uri(bound.Uri.GetLeftPart(UriPartial.Authority) + "/"));
    }

    public async ValueTask DisposeAsync()
    {
        // Stop background work first so nothing touches disposed services.
        _app.Services.GetRequiredService<JobScheduler>().Dispose();
        _app.Services.GetRequiredService<WebhookSender>().Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private static async Task RecordRequests(HttpContext context, RequestDelegate next)
    {
        if (context.Request.Path.StartsWithSegments(ControlEndpoints.Prefix, StringComparison.OrdinalIgnoreCase))
        {
            await next(context);
            return;
        }

        var state = context.RequestServices.GetRequiredService<FalEmulatorState>();
        var headers = context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
        var entry = state.Record(context.Request.Method, context.Request.Path + context.Request.QueryString, headers,
            context.Request.ContentLength ?? 0, DateTimeOffset.UtcNow);
        var recording = new RecordingStream(context.Request.Body, entry, keepText: IsSmallJson(context.Request));
        context.Request.Body = recording;
        try
        {
            await next(context);
        }
        finally
        {
            entry.BodyLength = Math.Max(entry.BodyLength, recording.BytesRead);
        }
    }

    private static bool IsSmallJson(HttpRequest request) =>
        request.ContentLength is null or <= RecordingStream.MaxKeptBytes
        && request.ContentType is { } type
        && type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase);
}

internal static class FalEmulatorServiceExtensions
{
    public static IServiceCollection AddFalEmulator(this IServiceCollection services, FalEmulatorOptions options)
    {
        services.AddSingleton(options);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<SigningKeys>();
        services.AddSingleton(sp => new FalEmulatorState(options.Faults, sp.GetRequiredService<SigningKeys>()));
        services.AddSingleton<FalAuth>();
        services.AddSingleton<FaultInjector>();
        services.AddSingleton<FileStore>();
        services.AddSingleton<ImageSource>();
        services.AddSingleton<WebhookSender>();
        services.AddSingleton<JobScheduler>();
        services.AddSingleton(EmulatorServices.From);
        return services;
    }
}

/// <summary>
/// Counts the bytes a handler reads, for bodies sent without Content-Length, and with <paramref name="keepText"/>
/// keeps a body of at most <see cref="MaxKeptBytes"/> as the entry's text once it has been read to its end
/// (before the handler answers, so a test that has the answer also has the body).
/// </summary>
internal sealed class RecordingStream(Stream inner, FalEmulatorState.RequestEntry entry, bool keepText) : Stream
{
    public const int MaxKeptBytes = 64 * 1024;

    private MemoryStream? _kept = keepText ? new MemoryStream() : null;

    public long BytesRead { get; private set; }

    public override bool CanRead => inner.CanRead;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Flush() => inner.Flush();

    public override int Read(byte[] buffer, int offset, int count)
    {
        var read = inner.Read(buffer, offset, count);
        Saw(buffer.AsSpan(offset, read), asked: count);
        return read;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await inner.ReadAsync(buffer, cancellationToken);
        Saw(buffer.Span[..read], asked: buffer.Length);
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    private void Saw(ReadOnlySpan<byte> bytes, int asked)
    {
        BytesRead += bytes.Length;
        if (_kept is null)
        {
            return;
        }

        if (bytes.Length == 0 && asked > 0)
        {
            entry.Body = System.Text.Encoding.UTF8.GetString(_kept.GetBuffer(), 0, (int)_kept.Length);
            _kept = null;
        }
        else if (_kept.Length + bytes.Length > MaxKeptBytes)
        {
            _kept = null; // too large to keep: BodyLength still says how large
        }
        else
        {
            _kept.Write(bytes);
        }
    }
}
