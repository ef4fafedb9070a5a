namespace Gateway.Hosting;

/// <summary>
/// Problem type URIs (RFC 9457 <c>type</c>): <c>urn:mai-image-gateway:problem:{slug}</c>, listed in the README.
/// Every type the gateway answers is named here, once.
/// </summary>
public static class ProblemTypes
{
    public const string Prefix = "urn:mai-image-gateway:problem:";

    public const string Validation = Prefix + "validation";
    public const string MalformedJson = Prefix + "malformed-json";
    public const string BadRequest = Prefix + "bad-request";
    public const string BodyTooLarge = Prefix + "body-too-large";
    public const string UnsupportedMediaType = Prefix + "unsupported-media-type";
    public const string MalformedMultipart = Prefix + "malformed-multipart";
    public const string Unauthorized = Prefix + "unauthorized";
    public const string Forbidden = Prefix + "forbidden";
    public const string NotFound = Prefix + "not-found";
    public const string MethodNotAllowed = Prefix + "method-not-allowed";
    public const string Internal = Prefix + "internal";
    public const string ShuttingDown = Prefix + "shutting-down";

    public const string ResultExpired = Prefix + "result-expired";
    public const string AlreadyCompleted = Prefix + "already-completed";
    public const string GenerationFailed = Prefix + "generation-failed";

    public const string LimitExceeded = Prefix + "limit-exceeded";
    public const string LimitsUnavailable = Prefix + "limits-unavailable";
    public const string StoreUnavailable = Prefix + "store-unavailable";
    public const string IdempotencyKeyInvalid = Prefix + "idempotency-key-invalid";
    public const string IdempotencyKeyReused = Prefix + "idempotency-key-reused";
    public const string IdempotencyKeyInFlight = Prefix + "idempotency-key-in-flight";

    public const string UpstreamRejected = Prefix + "upstream-rejected";
    public const string RateLimited = Prefix + "rate-limited";
    public const string UpstreamConfiguration = Prefix + "upstream-configuration";
    public const string UpstreamAccount = Prefix + "upstream-account";
    public const string UpstreamError = Prefix + "upstream-error";
    public const string UpstreamTimeout = Prefix + "upstream-timeout";
    public const string UpstreamUnavailable = Prefix + "upstream-unavailable";

    /// <summary>A refused webhook: <c>webhook-{reason}</c>, the reason in lower case.</summary>
    public const string WebhookPrefix = Prefix + "webhook-";

    /// <summary>A status without a type of its own: <c>http-{status}</c>.</summary>
    public static string ForStatus(int? status) => status switch
    {
        StatusCodes.Status401Unauthorized => Unauthorized,
        StatusCodes.Status404NotFound => NotFound,
        StatusCodes.Status405MethodNotAllowed => MethodNotAllowed,
        _ => Prefix + "http-" + status,
    };
}
