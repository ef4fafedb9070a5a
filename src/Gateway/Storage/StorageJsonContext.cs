using System.Text.Json.Serialization;

namespace Gateway.Storage;

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(GenerationRecord))]
internal sealed partial class StorageJsonContext : JsonSerializerContext;
