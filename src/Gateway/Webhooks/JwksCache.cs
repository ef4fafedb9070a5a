using System.Text.Json;
using Gateway.Upstream;
using Microsoft.Extensions.Options;
using NSec.Cryptography;

namespace Gateway.Webhooks;

/// <summary>
/// fal's webhook public keys (a JWKS of Ed25519 keys), cached for at most <c>Webhooks:JwksCacheTtl</c>.
/// A signature no cached key verifies may mean fal rotated its keys: then the set is fetched again,
/// but no more than once per <c>Webhooks:JwksRefetchInterval</c>, so forged requests cannot hammer fal.
/// </summary>
internal sealed partial class JwksCache(
    IHttpClientFactory clients, IOptions<FalOptions> fal, IOptions<WebhookOptions> options, TimeProvider time, ILogger<JwksCache> logger) : IDisposable
{
    public const string ClientName = "fal-jwks";

    private readonly SemaphoreSlim _gate = new(1, 1);
    private IReadOnlyList<PublicKey> _keys = [];
    private DateTimeOffset _fetchedAt = DateTimeOffset.MinValue;

    /// <summary>The current keys; <paramref name="refresh"/> asks for a refetch (rate-limited).</summary>
    public async Task<IReadOnlyList<PublicKey>> GetKeysAsync(bool refresh, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var stale = now - _fetchedAt >= options.Value.JwksCacheTtl;
        var refetchAllowed = now - _fetchedAt >= options.Value.JwksRefetchInterval;
        if (!stale && !(refresh && refetchAllowed))
        {
            return _keys;
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (time.GetUtcNow() - _fetchedAt < options.Value.JwksRefetchInterval && _keys.Count > 0)
            {
                return _keys; // another caller just fetched
            }

            _keys = await FetchAsync(cancellationToken);
            _fetchedAt = time.GetUtcNow();
            return _keys;
        }
        catch (Exception e) when (e is HttpRequestException or JsonException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            LogFetchFailed(logger, e);
            return stale && now - _fetchedAt >= TimeSpan.FromDays(1) ? [] : _keys;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<IReadOnlyList<PublicKey>> FetchAsync(CancellationToken cancellationToken)
    {
        using var response = await clients.CreateClient(ClientName).GetAsync(fal.Value.JwksUrl, cancellationToken);
        response.EnsureSuccessStatusCode();
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        using var document = await JsonDocument.ParseAsync(stream, cancellationToken: cancellationToken);
        var keys = new List<PublicKey>();
        foreach (var key in document.RootElement.GetProperty("keys").EnumerateArray())
        {
            if (key.TryGetProperty("kty", out var kty) && kty.GetString() == "OKP"
                && key.TryGetProperty("crv", out var crv) && crv.GetString() == "Ed25519"
                && key.TryGetProperty("x", out var x)
                && PublicKey.TryImport(SignatureAlgorithm.Ed25519, Base64UrlDecode(x.GetString() ?? ""), KeyBlobFormat.RawPublicKey, out var publicKey))
            {
                keys.Add(publicKey!);
            }
        }

        LogFetched(logger, keys.Count);
        return keys;
    }

    public void Dispose() => _gate.Dispose();

    private static byte[] Base64UrlDecode(string value)
    {
        try
        {
            return System.Buffers.Text.Base64Url.DecodeFromChars(value);
        }
        catch (FormatException)
        {
            return [];
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Fetched {KeyCount} webhook signing keys from fal")]
    private static partial void LogFetched(ILogger logger, int keyCount);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Fetching fal's webhook keys failed")]
    private static partial void LogFetchFailed(ILogger logger, Exception exception);
}
