using System.Runtime.InteropServices;
using System.Text.Json;
using Gateway.Generations;
using Gateway.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Gateway.Webhooks;

internal static partial class WebhookEndpoints
{
    public static RouteGroupBuilder MapFalWebhooks(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/webhooks").AllowAnonymous().WithTags("Webhooks");
        group.MapPost("/fal", ReceiveFalWebhook)
            .WithName(nameof(ReceiveFalWebhook))
            .WithSummary("fal's completion webhook (Ed25519-signed; idempotent)")
            .WithDescription("Called by fal, not by clients: the body is verified against fal's signature headers.")
            .DocumentsRequestBody<FalWebhookBody>("application/json", "fal's webhook, as fal sends it; its raw bytes are what the signature covers.")
            .WithRequestHeader(FalWebhookVerifier.RequestIdHeader, "The request id the webhook is about; part of the signed message.", required: true)
            .WithRequestHeader(FalWebhookVerifier.UserIdHeader, "fal's user id; part of the signed message.", required: true)
            .WithRequestHeader(FalWebhookVerifier.TimestampHeader, "Unix seconds; refused when more than Webhooks__TimestampTolerance from now.", required: true, example: "1764000000")
            .WithRequestHeader(FalWebhookVerifier.SignatureHeader, "Hex Ed25519 signature of request id, user id, timestamp and the body's SHA-256, by one of fal's JWKS keys.", required: true)
            .DescribesResponse(StatusCodes.Status200OK, "Taken (also when it repeats one already taken): the generation and the status it now has.")
            .ProducesProblemFor(StatusCodes.Status400BadRequest, "The body is not a JSON object, its request_id is not the signed one, or the generation is unknown.")
            .ProducesProblemFor(StatusCodes.Status401Unauthorized, "The signature headers are missing or malformed, the timestamp is not current, or the signature does not verify.")
            .ProducesProblemFor(StatusCodes.Status413PayloadTooLarge, "The body is larger than Webhooks__MaxBodyBytes.")
            .ProducesProblemFor(StatusCodes.Status503ServiceUnavailable, "fal's keys cannot be fetched now, or too many bodies are being read: deliver it again after Retry-After.")
            .WithResponseHeader("Retry-After", "Seconds to wait before delivering again.", [StatusCodes.Status503ServiceUnavailable], integer: true, example: "1");
        return group;
    }

    public static async Task<Results<Ok<WebhookAck>, ProblemHttpResult>> ReceiveFalWebhook(
        HttpContext httpContext,
        FalWebhookVerifier verifier,
        WebhookBodyReader bodies,
        IGenerationStore store,
        GenerationCompleter completer,
        WebhookMetrics metrics,
        ILogger<WebhookAck> logger)
    {
        var cancellationToken = httpContext.RequestAborted;
        var (delivery, refusal) = await ReadVerifiedAsync(httpContext, verifier, bodies, cancellationToken);
        if (refusal is not null)
        {
            return Reject(httpContext, metrics, logger, refusal);
        }

        GatewayMetrics.TagRequestId(delivery!.SignedRequestId); // verified: the job fal signed this delivery for
        if (delivery.RequestId is not { } requestId || requestId != delivery.SignedRequestId)
        {
            return Reject(httpContext, metrics, logger, new(WebhookRejection.RequestIdMismatch, StatusCodes.Status400BadRequest,
                "The body's request_id is not the signed request id."));
        }

        if (await store.GetAsync(requestId, cancellationToken) is not { } record)
        {
            return Reject(httpContext, metrics, logger, new(WebhookRejection.UnknownGeneration, StatusCodes.Status400BadRequest,
                $"No generation '{requestId}' is known to this gateway."));
        }

        var duplicate = record.IsTerminal;
        var ended = await completer.CompleteFromWebhookAsync(record, delivery.Status, delivery.Payload, delivery.Error, delivery.PayloadError, cancellationToken);
        metrics.Accepted(duplicate);
        LogAccepted(logger, requestId, delivery.Status, duplicate);
        return TypedResults.Ok(new WebhookAck(ended.Id, ended.Status));
    }

    /// <summary>
    /// Everything that needs no body is checked first (headers, declared length, fal's keys), so a request
    /// that cannot be genuine, or cannot be verified now, is answered before any of its body is read.
    /// </summary>
    private static async Task<(FalWebhookDelivery? Delivery, Refusal? Refusal)> ReadVerifiedAsync(
        HttpContext httpContext, FalWebhookVerifier verifier, WebhookBodyReader bodies, CancellationToken cancellationToken)
    {
        if (verifier.ReadHeaders(httpContext.Request.Headers, out var signature) is var malformed and not WebhookRejection.None)
        {
            return (null, new(malformed, StatusCodes.Status401Unauthorized,
                "The webhook's signature headers are missing or malformed, or its timestamp is not current."));
        }

        if (httpContext.Request.ContentLength > bodies.MaxBodyBytes)
        {
            return (null, TooLarge(bodies));
        }

        var keys = await verifier.KeysAsync(cancellationToken);
        if (keys.Count == 0)
        {
            return (null, new(WebhookRejection.NoKeys, StatusCodes.Status503ServiceUnavailable,
                "fal's webhook keys cannot be fetched right now, so the signature cannot be checked; deliver it again later.",
                verifier.KeysRetryAfter));
        }

        var (rejection, body) = await bodies.ReadAsync(httpContext, cancellationToken);
        if (rejection == WebhookRejection.Busy)
        {
            return (null, new(rejection, StatusCodes.Status503ServiceUnavailable,
                "Too many webhook bodies are being read at once; deliver it again shortly.", TimeSpan.FromSeconds(1)));
        }

        if (rejection == WebhookRejection.BodyTooLarge)
        {
            return (null, TooLarge(bodies));
        }

        await using (body)
        {
            var verified = await verifier.VerifyAsync(signature!, keys, body!.Sha256, cancellationToken);
            return verified == WebhookRejection.None
                ? await ParseAsync(signature!.RequestId, body.Content, cancellationToken)
                : (null, new(verified, StatusCodes.Status401Unauthorized, "The webhook's signature does not verify."));
        }
    }

    private static async Task<(FalWebhookDelivery? Delivery, Refusal? Refusal)> ParseAsync(string signedRequestId, Stream content, CancellationToken cancellationToken)
    {
        try
        {
            using var document = await JsonDocument.ParseAsync(content, cancellationToken: cancellationToken);
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                var payload = root.TryGetProperty("payload", out var p) && p.ValueKind == JsonValueKind.Object
                    ? (ReadOnlyMemory<byte>?)JsonMarshal.GetRawUtf8Value(p).ToArray()
                    : null; // typed: a null byte[] would convert to an empty, non-null memory
                return (new(signedRequestId, Text(root, "request_id"), Text(root, "status"), Text(root, "error"), Text(root, "payload_error"), payload), null);
            }
        }
        catch (JsonException)
        {
            // answered below
        }

        return (null, new(WebhookRejection.MalformedBody, StatusCodes.Status400BadRequest, "The webhook body is not a JSON object."));
    }

    private static Refusal TooLarge(WebhookBodyReader bodies) => new(WebhookRejection.BodyTooLarge, StatusCodes.Status413PayloadTooLarge,
        $"The webhook body is larger than the gateway accepts ({bodies.MaxBodyBytes} bytes, Webhooks__MaxBodyBytes).");

    private static ProblemHttpResult Reject(HttpContext httpContext, WebhookMetrics metrics, ILogger logger, Refusal refusal)
    {
        metrics.Rejected(refusal.Reason.ToString());
        LogRejected(logger, refusal.Reason);
        if (refusal.RetryAfter is { } retryAfter)
        {
            // fal redelivers a webhook that was not accepted; the header says when it is worth it.
            GatewayProblemDetails.SetRetryAfter(httpContext, retryAfter);
        }

        return TypedResults.Problem(refusal.Detail, statusCode: refusal.Status,
            title: refusal.Status == StatusCodes.Status503ServiceUnavailable ? "Webhook not processed now" : "Webhook refused",
            type: ProblemTypes.WebhookPrefix + refusal.Reason.ToString().ToLowerInvariant());
    }

    private static string? Text(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    [LoggerMessage(Level = LogLevel.Information, Message = "fal webhook for {GenerationId}: {Status} (duplicate: {Duplicate})")]
    private static partial void LogAccepted(ILogger logger, string generationId, string? status, bool duplicate);

    [LoggerMessage(Level = LogLevel.Warning, Message = "fal webhook refused: {Reason}")]
    private static partial void LogRejected(ILogger logger, WebhookRejection reason);
}

/// <summary>A webhook whose signature verified, as far as the gateway reads it.</summary>
internal sealed record FalWebhookDelivery(string SignedRequestId, string? RequestId, string? Status, string? Error, string? PayloadError, ReadOnlyMemory<byte>? Payload);

/// <summary>Why a webhook is not taken: the counter's reason, the status, the problem's detail and, for a 503, when to come back.</summary>
internal sealed record Refusal(WebhookRejection Reason, int Status, string Detail, TimeSpan? RetryAfter = null);

/// <summary>What the gateway answers fal: the generation and the status it now has.</summary>
/// <param name="Id">The generation (fal's request id).</param>
/// <param name="Status">The generation's status after the webhook.</param>
public sealed record WebhookAck(
    string Id,
    [property: ApiValues(GenerationStatus.InQueue, GenerationStatus.InProgress, GenerationStatus.Completed, GenerationStatus.Failed)] string Status);

/// <summary>fal's completion webhook, as fal sends it (read leniently: only what is described here is used).</summary>
/// <param name="RequestId">The request the webhook is about: must be the signed one.</param>
/// <param name="GatewayRequestId">fal's gateway request id.</param>
/// <param name="Status">OK when the request produced its output, ERROR when it failed.</param>
/// <param name="Payload">The model's output (OK) or fal's error body (ERROR); null when fal could not serialise it.</param>
/// <param name="Error">What went wrong (ERROR), e.g. "Invalid status code: 422".</param>
/// <param name="PayloadError">Why payload is null.</param>
[ApiExtensible]
public sealed record FalWebhookBody(
    string RequestId,
    [property: ApiOptional] string? GatewayRequestId,
    [property: ApiValues("OK", "ERROR")] string Status,
    [property: ApiOptional] Gateway.Proxy.FalJson? Payload,
    [property: ApiOptional] string? Error,
    [property: ApiOptional] string? PayloadError);
