using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Gateway.Generations;

/// <summary>The generation routes' types; snake_case like fal's own schema, read strictly (as the HTTP JSON options).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, PropertyNameCaseInsensitive = false,
    NumberHandling = JsonNumberHandling.Strict, AllowDuplicateProperties = false)]
[JsonSerializable(typeof(GenerateRequest))]
[JsonSerializable(typeof(EditRequest))]
[JsonSerializable(typeof(GenerationResponse))]
[JsonSerializable(typeof(StatusResponse))]
[JsonSerializable(typeof(CancelResponse))]
[JsonSerializable(typeof(ImageResult))]
[JsonSerializable(typeof(GenerationPage))]
internal sealed partial class GenerationJsonContext : JsonSerializerContext;

/// <summary>What goes to fal: only the fields that are set.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(FalImageInput))]
internal sealed partial class FalInputJsonContext : JsonSerializerContext
{
    /// <summary>
    /// The body for fal, escaping only what JSON requires. The default encoder escapes the '+' of every
    /// base64 data URI, and escaping makes the writer rent a char buffer of six times the string's length
    /// from the shared pool: a 1.4 MB inline image cost a 16 MiB array, which the pool then kept (issue 9, point 10).
    /// Nothing here is ever embedded in HTML.
    /// </summary>
    public static FalInputJsonContext Wire { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
