using System.Text.Json.Serialization;

namespace Gateway.Webhooks;

/// <summary>This feature's JSON types, snake_case like the rest of the API.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, PropertyNameCaseInsensitive = false,
    NumberHandling = JsonNumberHandling.Strict, AllowDuplicateProperties = false)]
[JsonSerializable(typeof(WebhookAck))]
internal sealed partial class WebhookJsonContext : JsonSerializerContext;
