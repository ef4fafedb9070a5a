using System.Globalization;
using System.Security.Cryptography;
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
    BadSignature,
    MalformedBody,
    RequestIdMismatch,
    UnknownGeneration,
    NoKeys,
}

/// <summary>
/// Checks fal's Ed25519 webhook signature exactly as fal documents it: the signed message is
/// <c>request_id \n user_id \n timestamp \n hex(sha256(raw body))</c>, the timestamp within the tolerance,
/// and any key of fal's JWKS may verify it (keys rotate).
/// </summary>
internal sealed class FalWebhookVerifier(JwksCache jwks, IOptions<WebhookOptions> options, TimeProvider time)
{
    public const string RequestIdHeader = "X-Fal-Webhook-Request-Id";
    public const string UserIdHeader = "X-Fal-Webhook-User-Id";
    public const string TimestampHeader = "X-Fal-Webhook-Timestamp";
    public const string SignatureHeader = "X-Fal-Webhook-Signature";

    public async Task<WebhookRejection> VerifyAsync(IHeaderDictionary headers, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
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

        byte[] signature;
        try
        {
            signature = Convert.FromHexString(signatureHex);
        }
        catch (FormatException)
        {
            return WebhookRejection.BadSignature;
        }

        var message = Encoding.UTF8.GetBytes(
            $"{requestId}\n{userId}\n{timestampText}\n{Convert.ToHexStringLower(SHA256.HashData(body.Span))}");
        var keys = await jwks.GetKeysAsync(refresh: false, cancellationToken);
        if (Verifies(keys, message, signature))
        {
            return WebhookRejection.None;
        }

        // Perhaps fal rotated its keys since they were fetched.
        keys = await jwks.GetKeysAsync(refresh: true, cancellationToken);
        return keys.Count == 0 ? WebhookRejection.NoKeys
            : Verifies(keys, message, signature) ? WebhookRejection.None
            : WebhookRejection.BadSignature;
    }

    private static bool Verifies(IReadOnlyList<PublicKey> keys, byte[] message, byte[] signature) =>
        keys.Any(key => SignatureAlgorithm.Ed25519.Verify(key, message, signature));

    private static string? Single(IHeaderDictionary headers, string name) =>
        headers.TryGetValue(name, out var values) && values.Count == 1 && !string.IsNullOrWhiteSpace(values[0]) ? values[0] : null;
}
