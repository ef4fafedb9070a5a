using System.Text.Json;
using Gateway.Upstream;
using Microsoft.Extensions.Options;
using NSec.Cryptography;

namespace Gateway.Webhooks;

/// <summary>
/// fal's webhook public keys (a JWKS of Ed25519 keys), cached for at most <c>Webhooks:JwksCacheTtl</c>.
/// A signature no cached key verifies may mean fal rotated its keys: then the set is fetched again.
/// Every attempt, failed or not, is remembered: there is at most one per <c>Webhooks:JwksRefetchInterval</c>,
/// so neither forged requests nor an outage at fal make the gateway hammer the JWKS URL. Concurrent callers
/// share the attempt in flight and wait for it no longer than <c>Webhooks:JwksWait</c>.
/// </summary>
internal sealed partial class JwksCache(
    IHttpClientFactory clients, IOptions<FalOptions> fal, IOptions<WebhookOptions> options, TimeProvider time, ILogger<JwksCache> logger)
{
    public const string ClientName = "fal-jwks";

    /// <summary>Keys are used past their TTL while refetches fail, but never once they are a day old (fal: cache ≤ 24 h).</summary>
    private static readonly TimeSpan MaxKeyAge = TimeSpan.FromDays(1);

    private readonly Lock _lock = new();
    private IReadOnlyList<PublicKey> _keys = [];
    private DateTimeOffset _fetchedAt = DateTimeOffset.MinValue;
    private DateTimeOffset _attemptedAt = DateTimeOffset.MinValue;
    private Task? _attempt;

    /// <summary>
    /// The keys that may verify a signature now; empty when none can be had (the JWKS URL is failing and
    /// nothing usable is cached). <paramref name="refresh"/> asks for a refetch, granted once per interval.
    /// </summary>
    public async Task<IReadOnlyList<PublicKey>> GetKeysAsync(bool refresh, CancellationToken cancellationToken)
    {
        Task? attempt;
        lock (_lock)
        {
            var now = time.GetUtcNow();
            if (!refresh && now - _fetchedAt < options.Value.JwksCacheTtl)
            {
                return _keys;
            }

            attempt = _attempt;
            if (attempt is null && now - _attemptedAt >= options.Value.JwksRefetchInterval)
            {
                _attemptedAt = now;
                // Not the caller's token: the attempt is shared, and its outcome serves later callers too.
                attempt = _attempt = Task.Run(AttemptAsync, CancellationToken.None);
            }
        }

        if (attempt is not null)
        {
            try
            {
                await attempt.WaitAsync(options.Value.JwksWait, time, cancellationToken);
            }
            catch (TimeoutException)
            {
                // The attempt goes on in the background; this caller answers with what is usable now.
            }
        }

        lock (_lock)
        {
            return time.GetUtcNow() - _fetchedAt < MaxKeyAge ? _keys : [];
        }
    }

    /// <summary>How long until the keys may next be fetched: the Retry-After of a webhook that found none.</summary>
    public TimeSpan NextAttemptIn
    {
        get
        {
            lock (_lock)
            {
                var wait = _attemptedAt + options.Value.JwksRefetchInterval - time.GetUtcNow();
                return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
            }
        }
    }

    private async Task AttemptAsync()
    {
        try
        {
            var keys = await FetchAsync();
            lock (_lock)
            {
                _keys = keys;
                _fetchedAt = time.GetUtcNow();
            }
        }
        catch (Exception e)
        {
            // Whatever went wrong (an error status, a timeout, a document not shaped like a JWKS), the attempt
            // is over and remembered: the webhooks that wanted it answer 503 and fal delivers them again.
            LogFetchFailed(logger, e);
        }
        finally
        {
            lock (_lock)
            {
                _attempt = null;
            }
        }
    }

    /// <summary>One GET, bounded by the client's <c>Webhooks:JwksFetchTimeout</c>; no retries (the next webhook, a minute on, is the retry).</summary>
    private async Task<IReadOnlyList<PublicKey>> FetchAsync()
    {
        using var response = await clients.CreateClient(ClientName).GetAsync(fal.Value.JwksUrl);
        response.EnsureSuccessStatusCode();
        await using var stream = await response.Content.ReadAsStreamAsync();
        using var document = await JsonDocument.ParseAsync(stream);
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Fetching fal's webhook keys failed; the next attempt is a refetch interval away")]
    private static partial void LogFetchFailed(ILogger logger, Exception exception);
}
