using System.Text.Json.Serialization;

namespace Gateway.Generations;

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(GenerationRecord))]
internal sealed partial class GenerationStoreJsonContext : JsonSerializerContext;
