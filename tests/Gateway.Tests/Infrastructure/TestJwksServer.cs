using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NSec.Cryptography;

namespace Gateway.Tests.Infrastructure;

/// <summary>
/// A JWKS endpoint on loopback whose Ed25519 keys the test holds, to sign webhook vectors with. It can also
/// fail (<see cref="FailWith"/>) or answer nothing (<see cref="Stall"/>), as fal's JWKS URL might.
/// </summary>
public sealed class TestJwksServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly List<Key> _published = [];
    private readonly CancellationTokenSource _stopping = new();
    private int _fetches;
    private int _failWith;
    private int _stalled;

    private TestJwksServer(WebApplication app) => _app = app;

    public string Url { get; private set; } = "";

    public int Fetches => Volatile.Read(ref _fetches);

    public static async Task<TestJwksServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(System.Net.IPAddress.Loopback, 0));
        var server = new TestJwksServer(builder.Build());
        server._app.MapGet("/jwks.json", async (HttpContext context) =>
        {
            Interlocked.Increment(ref server._fetches);
            if (Volatile.Read(ref server._stalled) == 1)
            {
                using var either = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, server._stopping.Token);
                await Task.Delay(Timeout.Infinite, either.Token).ContinueWith(_ => { }, TaskScheduler.Default);
                return Results.Empty;
            }

            if (Volatile.Read(ref server._failWith) is var status and not 0)
            {
                return Results.StatusCode(status);
            }

            lock (server._published)
            {
                var keys = server._published.Select(k => new Dictionary<string, string>
                {
                    ["kty"] = "OKP",
                    ["crv"] = "Ed25519",
                    ["x"] = Convert.ToBase64String(k.PublicKey.Export(KeyBlobFormat.RawPublicKey)).TrimEnd('=').Replace('+', '-').Replace('/', '_'),
                });
                return Results.Json(new { keys });
            }
        });
        await server._app.StartAsync();
        var address = server._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.Url = address + "/jwks.json";
        return server;
    }

    /// <summary>From now on every GET answers <paramref name="status"/> (still counted in <see cref="Fetches"/>).</summary>
    public void FailWith(System.Net.HttpStatusCode status) => Volatile.Write(ref _failWith, (int)status);

    /// <summary>From now on every GET is held open without an answer until the caller gives up.</summary>
    public void Stall() => Volatile.Write(ref _stalled, 1);

    /// <summary>Back to answering with the published keys.</summary>
    public void Recover()
    {
        Volatile.Write(ref _failWith, 0);
        Volatile.Write(ref _stalled, 0);
    }

    public static Key NewKey() => Key.Create(SignatureAlgorithm.Ed25519);

    public void Publish(Key key)
    {
        lock (_published)
        {
            _published.Add(key);
        }
    }

    public void Withdraw(Key key)
    {
        lock (_published)
        {
            _published.Remove(key);
        }
    }

    /// <summary>fal's webhook headers for <paramref name="body"/>, signed with <paramref name="key"/>.</summary>
    public static Dictionary<string, string> Sign(Key key, string requestId, byte[] body, DateTimeOffset at, string userId = "user-1")
    {
        var timestamp = at.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var message = Encoding.UTF8.GetBytes($"{requestId}\n{userId}\n{timestamp}\n{Convert.ToHexStringLower(SHA256.HashData(body))}");
        return new Dictionary<string, string>
        {
            ["X-Fal-Webhook-Request-Id"] = requestId,
            ["X-Fal-Webhook-User-Id"] = userId,
            ["X-Fal-Webhook-Timestamp"] = timestamp,
            ["X-Fal-Webhook-Signature"] = Convert.ToHexStringLower(SignatureAlgorithm.Ed25519.Sign(key, message)),
        };
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await _app.DisposeAsync();
        _stopping.Dispose();
        foreach (var key in _published)
        {
            key.Dispose();
        }
    }
}
