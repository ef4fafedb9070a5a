using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace FalEmulator;

// The wire shapes of fal's answers, snake_case through EmulatorJson.

internal sealed record SubmitResponse(
    string RequestId,
    string ResponseUrl,
    string StatusUrl,
    string CancelUrl,
    string Status,
    int? QueuePosition,
    string GatewayRequestId);

internal sealed record StatusResponse(
    string Status,
    string RequestId,
    string ResponseUrl,
    string StatusUrl,
    string CancelUrl,
    int? QueuePosition = null,
    IReadOnlyList<LogEntry>? Logs = null,
    StatusMetrics? Metrics = null,
    string? Error = null,
    string? ErrorType = null);

internal sealed record LogEntry(string Message, string Level, string Source, string Timestamp);

internal sealed record StatusMetrics(double InferenceTime);

internal sealed record CancelResponse(string Status);

internal sealed record ImageFile(string Url, string ContentType, string FileName, long FileSize, int Width, int Height);

internal sealed record ModelOutput(IReadOnlyList<ImageFile> Images, string Description);

internal sealed record ErrorResponse(string Detail, string? ErrorType = null);

internal sealed record ValidationIssue(IReadOnlyList<string> Loc, string Msg, string Type, JsonObject? Ctx = null, string? Url = null);

internal sealed record ValidationErrorResponse(IReadOnlyList<ValidationIssue> Detail);

internal sealed record UploadInitiateRequest(string? ContentType, string? FileName);

internal sealed record UploadInitiateResponse(string UploadUrl, string FileUrl);

// fal's JS client sends partNumber; snake_case callers send part_number.
internal sealed record MultipartPart(int PartNumber, string? Etag)
{
    [JsonPropertyName("partNumber")]
    public int? CamelPartNumber
    {
        get => null;
        init => PartNumber = value ?? PartNumber;
    }
}

internal sealed record MultipartCompleteRequest(string? UploadUrl, string? UploadId, IReadOnlyList<MultipartPart>? Parts);

internal sealed record MultipartCompleteResponse(string FileUrl);

internal sealed record WebhookBody(
    string RequestId,
    string GatewayRequestId,
    string Status,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] JsonNode? Payload,
    string? Error = null);

internal sealed record Jwk(string Kty, string Crv, string X, string Kid, string Use, string Alg);

internal sealed record JwksDocument(IReadOnlyList<Jwk> Keys);

internal sealed record StatsResponse(
    int SubmitCount,
    int AcceptedSubmitCount,
    int StatusCallCount,
    int ResultCallCount,
    int CancelCount,
    int UploadCount,
    int RunCount,
    int WebhooksSent,
    int RequestCount,
    int FaultRuleCount,
    int FileDownloadCount);

internal sealed record ResetResponse(string Status);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true,
    PropertyNameCaseInsensitive = true)]
[JsonSerializable(typeof(SubmitResponse))]
[JsonSerializable(typeof(StatusResponse))]
[JsonSerializable(typeof(CancelResponse))]
[JsonSerializable(typeof(ModelOutput))]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(ValidationErrorResponse))]
[JsonSerializable(typeof(UploadInitiateRequest))]
[JsonSerializable(typeof(UploadInitiateResponse))]
[JsonSerializable(typeof(MultipartCompleteRequest))]
[JsonSerializable(typeof(MultipartCompleteResponse))]
[JsonSerializable(typeof(WebhookBody))]
[JsonSerializable(typeof(JwksDocument))]
[JsonSerializable(typeof(StatsResponse))]
[JsonSerializable(typeof(ResetResponse))]
internal sealed partial class EmulatorJson : JsonSerializerContext;

/// <summary>Control-endpoint body for adding a fault; PascalCase or snake_case both bind.</summary>
[JsonSourceGenerationOptions(PropertyNameCaseInsensitive = true, UseStringEnumConverter = true)]
[JsonSerializable(typeof(FaultRule))]
internal sealed partial class FaultRuleJson : JsonSerializerContext;
