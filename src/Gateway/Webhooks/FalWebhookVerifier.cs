using System.Buffers;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Options;
using NSec.Cryptography;

namespace Gateway.Webhooks;

/// <summary>Why a webhook was refused; also the <c>reason</c> label of the rejection counter.</summary>
public enum WebhookRejection
{
    None,
    MissingHeader,
    BadTimestamp,
    StaleTimestamp,
    MalformedSignature,
    BadSignature,
    MalformedBody,
    RequestIdMismatch,
    UnknownGeneration,
    NoKeys,
    BodyTooLarge,
    Busy,
}

/// <summary>fal's four signature headers, read and checked for form before any of the body is read.</summary>
internal sealed record FalWebhookSignature(string RequestId, string UserId, string Timestamp, byte[] Signature);

/// <summary>
/// Checks fal's Ed25519 webhook signature exactly as fal documents it: the signed message is
/// <c>request_id \n user_id \n timestamp \n hex(sha256(raw body))</c>, the timestamp within the tolerance,
/// and any key of fal's JWKS may verify it (keys rotate). The headers are checked first, on their own, so a
/// request that cannot be genuine is refused before its body is read.
/// </summary>
internal sealed class FalWebhookVerifier(JwksCache jwks, IOptions<WebhookOptions> options, TimeProvider time)
{
    public const string RequestIdHeader = "X-Fal-Webhook-Request-Id";
    public const string UserIdHeader = "X-Fal-Webhook-User-Id";
    public const string TimestampHeader = "X-Fal-Webhook-Timestamp";
    public const string SignatureHeader = "X-Fal-Webhook-Signature";

    private const int SignatureBytes = 64; // Ed25519

    /// <summary>The signature headers, when all four are present, well-formed and the timestamp is fresh.</summary>
    public WebhookRejection ReadHeaders(IHeaderDictionary headers, out FalWebhookSignature? signature)
    {
        signature = null;
        if (Single(headers, RequestIdHeader) is not { } requestId || Single(headers, UserIdHeader) is not { } userId
            || Single(headers, TimestampHeader) is not { } timestampText || Single(headers, SignatureHeader) is not { } signatureHex)
        {
            return WebhookRejection.MissingHeader;
        }

        if (!long.TryParse(timestampText, NumberStyles.None, CultureInfo.InvariantCulture, out var timestamp))
        {
            return WebhookRejection.BadTimestamp;
        }

        var skew = time.GetUtcNow() - DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(timestamp, 0, 253402300799));
        if (skew.Duration() > options.Value.TimestampTolerance)
        {
            return WebhookRejection.StaleTimestamp;
        }

        var bytes = new byte[SignatureBytes];
        if (signatureHex.Length != SignatureBytes * 2
            || Convert.FromHexString(signatureHex, bytes, out _, out _) != OperationStatus.Done)
        {
            return WebhookRejection.MalformedSignature;
        }

        signature = new FalWebhookSignature(requestId, userId, timestampText, bytes);
        return WebhookRejection.None;
    }

    /// <summary>fal's keys as cached; empty when they cannot be had right now (then nothing can be verified).</summary>
    public Task<IReadOnlyList<PublicKey>> KeysAsync(CancellationToken cancellationToken) =>
        jwks.GetKeysAsync(refresh: false, cancellationToken);

    /// <summary>How long until the keys may be fetched again: the Retry-After when there are none.</summary>
    public TimeSpan KeysRetryAfter => jwks.NextAttemptIn;

    /// <summary>Verifies the signature over the headers and the body's SHA-256, refetching the keys (rate-limited) once if none verifies.</summary>
    public async Task<WebhookRejection> VerifyAsync(
        FalWebhookSignature signature, IReadOnlyList<PublicKey> keys, ReadOnlyMemory<byte> bodySha256, CancellationToken cancellationToken)
    {
        var message = Encoding.UTF8.GetBytes(
            $"{signature.RequestId}\n{signature.UserId}\n{signature.Timestamp}\n{Convert.ToHexStringLower(bodySha256.Span)}");
        if (Verifies(keys, message, signature.Signature))
        {
            return WebhookRejection.None;
        }

        // Perhaps fal rotated its keys since they were fetched.
        var refreshed = await jwks.GetKeysAsync(refresh: true, cancellationToken);
        return !ReferenceEquals(refreshed, keys) && Verifies(refreshed, message, signature.Signature)
            ? WebhookRejection.None
            : WebhookRejection.BadSignature;
    }

    private static bool Verifies(IReadOnlyList<PublicKey> keys, byte[] message, byte[] signature) =>
        keys.Any(key => SignatureAlgorithm.Ed25519.Verify(key, message, signature));

    private static string? Single(IHeaderDictionary headers, string name) =>
        headers.TryGetValue(name, out var values) && values.Count == 1 && !string.IsNullOrWhiteSpace(values[0]) ? values[0] : null;
}
