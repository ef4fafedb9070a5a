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
internal sealed partial class FalInputJsonContext : JsonSerializerContext;
