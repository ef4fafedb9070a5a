using System.Runtime.InteropServices;
using System.Text.Json;
using Gateway.Generations;
using Gateway.Hosting;
using Gateway.Storage;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

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
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status401Unauthorized);
        return group;
    }

    public static async Task<Results<Ok<WebhookAck>, ProblemHttpResult>> ReceiveFalWebhook(
        HttpContext httpContext,
        FalWebhookVerifier verifier,
        IGenerationStore store,
        GenerationService service,
        GatewayMetrics metrics,
        IOptions<WebhookOptions> options,
        ILogger<WebhookAck> logger)
    {
        if (httpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = options.Value.MaxBodyBytes; // sync_mode payloads carry whole images
        }

        var cancellationToken = httpContext.RequestAborted;
        using var buffer = new MemoryStream();
        await httpContext.Request.Body.CopyToAsync(buffer, cancellationToken);
        var body = buffer.GetBuffer().AsMemory(0, (int)buffer.Length);

        var rejection = await verifier.VerifyAsync(httpContext.Request.Headers, body, cancellationToken);
        if (rejection != WebhookRejection.None)
        {
            return Reject(metrics, logger, rejection, StatusCodes.Status401Unauthorized, "The webhook's signature headers do not verify.");
        }

        string? requestId, status, error, payloadError;
        ReadOnlyMemory<byte>? payload;
        try
        {
            using var document = JsonDocument.Parse(body);
            var root = document.RootElement;
            requestId = Text(root, "request_id");
            status = Text(root, "status");
            error = Text(root, "error");
            payloadError = Text(root, "payload_error");
            payload = root.TryGetProperty("payload", out var p) && p.ValueKind == JsonValueKind.Object
                ? (ReadOnlyMemory<byte>?)JsonMarshal.GetRawUtf8Value(p).ToArray()
                : null; // typed: a null byte[] would convert to an empty, non-null memory
        }
        catch (JsonException)
        {
            return Reject(metrics, logger, WebhookRejection.MalformedBody, StatusCodes.Status400BadRequest, "The webhook body is not JSON.");
        }

        if (requestId is null || requestId != httpContext.Request.Headers[FalWebhookVerifier.RequestIdHeader].ToString())
        {
            return Reject(metrics, logger, WebhookRejection.RequestIdMismatch, StatusCodes.Status400BadRequest,
                "The body's request_id is not the signed request id.");
        }

        if (await store.GetAsync(requestId, cancellationToken) is not { } record)
        {
            return Reject(metrics, logger, WebhookRejection.UnknownGeneration, StatusCodes.Status400BadRequest,
                $"No generation '{requestId}' is known to this gateway.");
        }

        var duplicate = record.IsTerminal;
        var ended = await service.CompleteFromWebhookAsync(record, status, payload, error, payloadError, cancellationToken);
        metrics.WebhookAccepted(duplicate);
        LogAccepted(logger, requestId, status, duplicate);
        return TypedResults.Ok(new WebhookAck(ended.Id, ended.Status));
    }

    private static ProblemHttpResult Reject(GatewayMetrics metrics, ILogger logger, WebhookRejection reason, int status, string detail)
    {
        metrics.WebhookRejected(reason.ToString());
        LogRejected(logger, reason);
        return TypedResults.Problem(detail, statusCode: status, title: "Webhook refused", type: ProblemTypes.For("webhook-" + reason.ToString().ToLowerInvariant()));
    }

    private static string? Text(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    [LoggerMessage(Level = LogLevel.Information, Message = "fal webhook for {GenerationId}: {Status} (duplicate: {Duplicate})")]
    private static partial void LogAccepted(ILogger logger, string generationId, string? status, bool duplicate);

    [LoggerMessage(Level = LogLevel.Warning, Message = "fal webhook refused: {Reason}")]
    private static partial void LogRejected(ILogger logger, WebhookRejection reason);
}

/// <summary>What the gateway answers fal: the generation and the status it now has.</summary>
public sealed record WebhookAck(string Id, string Status);
