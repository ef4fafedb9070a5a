using System.Text.Json.Serialization;
using Gateway.Files;
using Gateway.Clients;
using Gateway.Generations;

namespace Gateway.Hosting;

/// <summary>Every type the public API reads or writes; snake_case like fal's own schema, read strictly (as the HTTP JSON options).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, PropertyNameCaseInsensitive = false,
    NumberHandling = JsonNumberHandling.Strict, AllowDuplicateProperties = false)]
[JsonSerializable(typeof(GenerateRequest))]
[JsonSerializable(typeof(EditRequest))]
[JsonSerializable(typeof(GenerationResponse))]
[JsonSerializable(typeof(StatusResponse))]
[JsonSerializable(typeof(CancelResponse))]
[JsonSerializable(typeof(ImageResult))]
[JsonSerializable(typeof(Gateway.Webhooks.WebhookAck))]
[JsonSerializable(typeof(FileResponse))]
[JsonSerializable(typeof(GenerationPage))]
[JsonSerializable(typeof(UsageResponse))]
internal sealed partial class GatewayJsonContext : JsonSerializerContext;

/// <summary>What goes to fal: only the fields that are set.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(FalImageInput))]
internal sealed partial class FalInputJsonContext : JsonSerializerContext;
