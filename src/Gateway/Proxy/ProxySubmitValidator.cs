using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gateway.Generations;
using Gateway.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Validation;
using Microsoft.Net.Http.Headers;

namespace Gateway.Proxy;

/// <summary>
/// Reads a proxied submit body exactly as the /v1 routes read theirs (the gateway's JSON options, the same
/// request types, .NET's validation with the same services) and turns refusals into fal's own 422 shape,
/// <c>{"detail":[{"loc":["body","num_images"],"msg":"…","type":"value_error"}]}</c>.
/// </summary>
internal sealed class ProxySubmitValidator(
    IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> jsonOptions,
    IOptions<ValidationOptions> validationOptions,
    ValidationFieldNames fieldNames,
    IServiceProvider services)
{
    public async Task<(ImageRequest? Request, JsonNode? FalErrors)> ReadAsync(HttpContext context, bool edit, CancellationToken cancellationToken)
    {
        var type = edit ? typeof(EditRequest) : typeof(GenerateRequest);
        ImageRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync(context.Request.Body, type, jsonOptions.Value.SerializerOptions, cancellationToken) as ImageRequest;
        }
        catch (JsonException e)
        {
            var error = JsonBodyError.From(e);
            return (null, Errors([(error.Field, error.Message, error.Kind == JsonBodyErrorKind.WrongType ? "type_error" : "json_invalid")]));
        }

        if (request is null)
        {
            return (null, Errors([("body", "A JSON object body is required.", "missing")]));
        }

        var errors = await ValidateAsync(request, type, cancellationToken);
        return errors.Count == 0
            ? (request, null)
            : (null, Errors([.. fieldNames.ToJsonNames(errors).SelectMany(e => e.Value.Select(m => (e.Key, m, "value_error")))]));
    }

    /// <summary>
    /// Whether the body is declared as JSON: <c>application/json</c>, with no charset or UTF-8 (what @fal-ai/client
    /// sends). /v1 refuses other types with 415 before reading; so does the proxy.
    /// </summary>
    public static bool IsJson(string? contentType) =>
        MediaTypeHeaderValue.TryParse(contentType, out var type)
        && type.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
        && HeaderUtilities.RemoveQuotes(type.Charset) is var charset
        && (charset.Length == 0 || charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase));

    // The generated validation the /v1 endpoints run, so both paths refuse exactly the same bodies. Its public entry
    // points are marked experimental (ASP0029) in .NET 10; the SDK is pinned by global.json and a test compares the paths.
#pragma warning disable ASP0029
    private async Task<IDictionary<string, string[]>> ValidateAsync(ImageRequest request, Type type, CancellationToken cancellationToken)
    {
        var options = validationOptions.Value;
        if (!options.TryGetValidatableTypeInfo(type, out var info))
        {
            throw new InvalidOperationException($"{type.Name} has no generated validation; is AddValidation() registered?");
        }

        var context = new ValidateContext { ValidationOptions = options, ValidationContext = new ValidationContext(request, services, null) };
        await info.ValidateAsync(request, context, cancellationToken);
        return context.ValidationErrors ?? new Dictionary<string, string[]>();
    }
#pragma warning restore ASP0029

    /// <summary>fal's (pydantic's) error list: <c>loc</c> is ["body", field, index…].</summary>
    private static JsonObject Errors(IEnumerable<(string Field, string Message, string Type)> errors)
    {
        var detail = new JsonArray();
        foreach (var (field, message, type) in errors)
        {
            var loc = new JsonArray("body");
            if (field != "body")
            {
                foreach (var part in field.Split(['.', '['], StringSplitOptions.RemoveEmptyEntries))
                {
                    loc.Add(part.EndsWith(']') && int.TryParse(part.TrimEnd(']'), NumberStyles.None, CultureInfo.InvariantCulture, out var index)
                        ? JsonValue.Create(index)
                        : JsonValue.Create(part));
                }
            }

            detail.Add(new JsonObject { ["loc"] = loc, ["msg"] = message, ["type"] = type });
        }

        return new JsonObject { ["detail"] = detail };
    }
}
