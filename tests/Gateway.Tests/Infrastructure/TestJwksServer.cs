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

/// <summary>A JWKS endpoint on loopback whose Ed25519 keys the test holds, to sign webhook vectors with.</summary>
public sealed class TestJwksServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly List<Key> _published = [];
    private int _fetches;

    private TestJwksServer(WebApplication app) => _app = app;

    public string Url { get; private set; } = "";

    public int Fetches => Volatile.Read(ref _fetches);

    public static async Task<TestJwksServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(System.Net.IPAddress.Loopback, 0));
        var server = new TestJwksServer(builder.Build());
        server._app.MapGet("/jwks.json", (HttpContext _) =>
        {
            Interlocked.Increment(ref server._fetches);
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
        await _app.DisposeAsync();
        foreach (var key in _published)
        {
            key.Dispose();
        }
    }
}
