using System.Text.Json;
using System.Text.Json.Serialization;

namespace Gateway.Upstream;

/// <summary>fal's answer to a submit; read leniently, fields come and go between versions.</summary>
internal sealed record FalSubmitResponse(
    [property: JsonPropertyName("request_id")] string RequestId,
    [property: JsonPropertyName("response_url")] string? ResponseUrl,
    [property: JsonPropertyName("status_url")] string? StatusUrl,
    [property: JsonPropertyName("cancel_url")] string? CancelUrl,
    [property: JsonPropertyName("status")] string? Status,
    [property: JsonPropertyName("queue_position")] int? QueuePosition);

internal sealed record FalStatus(
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("queue_position")] int? QueuePosition,
    [property: JsonPropertyName("logs")] IReadOnlyList<FalLog>? Logs,
    [property: JsonPropertyName("error")] string? Error,
    [property: JsonPropertyName("error_type")] string? ErrorType)
{
    public const string InProgress = "IN_PROGRESS";
    public const string Completed = "COMPLETED";
}

/// <summary>One of fal's log lines, as fal sent it.</summary>
/// <param name="Message">The line.</param>
/// <param name="Level">Its level, e.g. INFO.</param>
/// <param name="Source">Where it came from, e.g. USER.</param>
/// <param name="Timestamp">When, as fal wrote it.</param>
public sealed record FalLog(
    [property: JsonPropertyName("message")] string? Message,
    [property: JsonPropertyName("level")] string? Level,
    [property: JsonPropertyName("source")] string? Source,
    [property: JsonPropertyName("timestamp")] string? Timestamp);

/// <summary>One entry of fal's <c>{"detail":[{loc,msg,type}]}</c>.</summary>
public sealed record FalFieldError(
    [property: JsonPropertyName("loc")] IReadOnlyList<JsonElement>? Loc,
    [property: JsonPropertyName("msg")] string? Msg,
    [property: JsonPropertyName("type")] string? Type)
{
    /// <summary>The field the error is about: the last named segment of <c>loc</c> after <c>body</c>.</summary>
    public string Field
    {
        get
        {
            var names = (Loc ?? []).Select(e => e.ValueKind == JsonValueKind.Number ? $"[{e.GetRawText()}]" : e.ToString())
                .SkipWhile(s => s == "body").ToList();
            return names.Count == 0 ? "body" : string.Concat(names.Select((s, i) => i == 0 || s.StartsWith('[') ? s : "." + s));
        }
    }
}

/// <summary>fal storage's initiate request.</summary>
internal sealed record FalUploadInitiate(
    [property: JsonPropertyName("content_type")] string ContentType,
    [property: JsonPropertyName("file_name")] string FileName);

/// <summary>fal storage's initiate answer: PUT the bytes to <c>upload_url</c>; the file is then at <c>file_url</c>.</summary>
internal sealed record FalUploadTarget(
    [property: JsonPropertyName("upload_url")] string? UploadUrl,
    [property: JsonPropertyName("file_url")] string? FileUrl);

[JsonSourceGenerationOptions(PropertyNameCaseInsensitive = true, NumberHandling = JsonNumberHandling.AllowReadingFromString)]
[JsonSerializable(typeof(FalSubmitResponse))]
[JsonSerializable(typeof(FalStatus))]
[JsonSerializable(typeof(FalUploadInitiate))]
[JsonSerializable(typeof(FalUploadTarget))]
[JsonSerializable(typeof(List<FalFieldError>))]
[JsonSerializable(typeof(JsonElement))]
internal sealed partial class FalJsonContext : JsonSerializerContext;
