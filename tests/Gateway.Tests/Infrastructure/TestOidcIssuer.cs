using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Gateway.Tests.Infrastructure;

/// <summary>
/// A company identity provider on loopback, as the gateway sees one: an OIDC discovery document and a JWKS of real
/// RSA keys, and RS256 access tokens signed with them (Entra-shaped: azp or appid, oid, sub). Keys rotate on demand
/// (a new <c>kid</c>), and the test counts how often the gateway fetched the keys.
/// </summary>
public sealed class TestOidcIssuer : IAsyncDisposable
{
    public const string Audience = "api://mai-image-gateway-tests";

    private readonly WebApplication _app;
    private readonly List<(string Kid, RSA Key)> _published = [];
    private int _jwksFetches;

    private TestOidcIssuer(WebApplication app) => _app = app;

    /// <summary>The issuer (<c>iss</c>) and the gateway's <c>Auth__Oidc__Authority</c>.</summary>
    public string Authority { get; private set; } = "";

    public int JwksFetches => Volatile.Read(ref _jwksFetches);

    /// <summary>The key new tokens are signed with.</summary>
    public (string Kid, RSA Key) SigningKey { get; private set; }

    public static async Task<TestOidcIssuer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(System.Net.IPAddress.Loopback, 0));
        var issuer = new TestOidcIssuer(builder.Build());
        issuer._app.MapGet("/.well-known/openid-configuration", () => Results.Json(new Dictionary<string, object>
        {
            ["issuer"] = issuer.Authority,
            ["jwks_uri"] = issuer.Authority + "/keys",
            ["authorization_endpoint"] = issuer.Authority + "/authorize",
            ["token_endpoint"] = issuer.Authority + "/token",
            ["response_types_supported"] = new[] { "code" },
            ["subject_types_supported"] = new[] { "public" },
            ["id_token_signing_alg_values_supported"] = new[] { "RS256" },
        }));
        issuer._app.MapGet("/keys", () =>
        {
            Interlocked.Increment(ref issuer._jwksFetches);
            lock (issuer._published)
            {
                return Results.Json(new { keys = issuer._published.Select(k => Jwk(k.Kid, k.Key)).ToArray() });
            }
        });
        await issuer._app.StartAsync();
        issuer.Authority = issuer._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        issuer.Rotate(keepOld: false);
        return issuer;
    }

    /// <summary>The gateway's settings for this issuer (RequireHttpsMetadata off: it is plain HTTP on loopback).</summary>
    public Dictionary<string, string?> Settings(params (string Key, string? Value)[] more)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Auth:Oidc:Authority"] = Authority,
            ["Auth:Oidc:Audience"] = Audience,
            ["Auth:Oidc:RequireHttpsMetadata"] = "false",
        };
        foreach (var (key, value) in more)
        {
            settings[key] = value;
        }

        return settings;
    }

    /// <summary>A new signing key with a new <c>kid</c>, published; the old one stays published only when <paramref name="keepOld"/>.</summary>
    public void Rotate(bool keepOld)
    {
        var key = (Kid: "kid-" + Guid.NewGuid().ToString("N")[..8], Key: RSA.Create(2048));
        lock (_published)
        {
            if (!keepOld)
            {
                _published.Clear();
            }

            _published.Add(key);
        }

        SigningKey = key;
    }

    /// <summary>An access token for <paramref name="user"/> of <paramref name="app"/>; <paramref name="edit"/> changes its claims before it is signed.</summary>
    public string Token(string app, string user, Action<JsonObject>? edit = null, TimeSpan? lifetime = null, (string Kid, RSA Key)? signWith = null, string appClaim = "azp")
    {
        var now = DateTimeOffset.UtcNow;
        var claims = new JsonObject
        {
            ["iss"] = Authority,
            ["aud"] = Audience,
            ["iat"] = now.ToUnixTimeSeconds(),
            ["nbf"] = now.AddMinutes(-1).ToUnixTimeSeconds(),
            ["exp"] = now.Add(lifetime ?? TimeSpan.FromHours(1)).ToUnixTimeSeconds(),
            [appClaim] = app,
            ["oid"] = user,
            ["sub"] = "pairwise-" + user,
            ["scp"] = "images.generate",
        };
        edit?.Invoke(claims);
        var (kid, key) = signWith ?? SigningKey;
        return Sign(new JsonObject { ["alg"] = "RS256", ["typ"] = "JWT", ["kid"] = kid }, claims, key);
    }

    /// <summary>The same claims with <c>alg: none</c> and no signature: what an attacker sends hoping the check is skipped.</summary>
    public string AlgNone(string app, string user)
    {
        var signed = Token(app, user);
        var payload = signed.Split('.')[1];
        return Encode(new JsonObject { ["alg"] = "none", ["typ"] = "JWT" }) + "." + payload + ".";
    }

    public static string Sign(JsonObject header, JsonObject claims, RSA key)
    {
        var signingInput = Encode(header) + "." + Encode(claims);
        var signature = key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return signingInput + "." + Base64Url.EncodeToString(signature);
    }

    private static string Encode(JsonObject json) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(json.ToJsonString()));

    private static Dictionary<string, string> Jwk(string kid, RSA key)
    {
        var parameters = key.ExportParameters(false);
        return new Dictionary<string, string>
        {
            ["kty"] = "RSA",
            ["use"] = "sig",
            ["alg"] = "RS256",
            ["kid"] = kid,
            ["n"] = Base64Url.EncodeToString(parameters.Modulus),
            ["e"] = Base64Url.EncodeToString(parameters.Exponent),
        };
    }

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        lock (_published)
        {
            foreach (var (_, key) in _published)
            {
                key.Dispose();
            }
        }
    }
}
