using System.Text.Json.Serialization;

namespace Gateway.Files;

/// <summary>This feature's JSON types, snake_case like the rest of the API.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, PropertyNameCaseInsensitive = false,
    NumberHandling = JsonNumberHandling.Strict, AllowDuplicateProperties = false)]
[JsonSerializable(typeof(FileResponse))]
internal sealed partial class FileJsonContext : JsonSerializerContext;
