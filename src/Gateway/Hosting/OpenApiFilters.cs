using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Authorization;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace Gateway.Hosting;

/// <summary>
/// Makes each schema say what the JSON really holds. For the answers (records): every member the serializer
/// always writes is <c>required</c>, and may be null exactly when its C# type is nullable; a member written only
/// when set (<c>JsonIgnore(WhenWritingNull)</c>) is optional and never null; fal's own optional members
/// (<see cref="ApiOptionalAttribute"/>) are optional and nullable. <c>[AllowedValues]</c> and <see cref="ApiValuesAttribute"/>
/// become <c>enum</c>s. Requests refuse unknown fields; objects fal sends through (<see cref="ApiExtensibleAttribute"/>) allow them.
/// </summary>
internal sealed class GatewaySchemaFilter : ISchemaFilter
{
    public void Apply(IOpenApiSchema schema, SchemaFilterContext context)
    {
        if (schema is not OpenApiSchema concrete)
        {
            return;
        }

        if (context.MemberInfo is { } member)
        {
            ApplyValues(concrete, member);
            return;
        }

        var type = context.Type;
        if (type.GetProperties().Any(p => p.GetCustomAttribute<JsonExtensionDataAttribute>() is not null))
        {
            // The catch-all for unknown fields is hidden: the schema says no other fields are allowed.
            concrete.AdditionalPropertiesAllowed = false;
            concrete.AdditionalProperties = null;

            // A request's optional fields are to be left out rather than sent as null (which is accepted, and means the same).
            // Their defaults are told in words: client generators (openapi-typescript) make a field with a `default` required.
            foreach (var field in (concrete.Properties ?? new Dictionary<string, IOpenApiSchema>()).Values)
            {
                WithNullability(field, nullable: false);
                if (field is OpenApiSchema { Default: { } value } withDefault)
                {
                    withDefault.Description = $"{withDefault.Description} Default: {value.ToJsonString()}.".TrimStart();
                    withDefault.Default = null;
                }
            }
        }

        if (IsRecord(type) && concrete.Properties is { Count: > 0 })
        {
            ApplyPresence(concrete, type);
        }

        if (type.GetCustomAttribute<ApiExtensibleAttribute>() is not null)
        {
            concrete.AdditionalPropertiesAllowed = true;
            concrete.AdditionalProperties = null;
        }

        if (type.GetCustomAttribute<ApiExampleAttribute>() is { } example)
        {
            concrete.Example = JsonNode.Parse(example.Json);
        }
    }

    private static void ApplyValues(OpenApiSchema schema, MemberInfo member)
    {
        var values = member.GetCustomAttribute<AllowedValuesAttribute>()?.Values.Where(v => v is not null).Select(v => v!.ToString()!)
            ?? member.GetCustomAttribute<ApiValuesAttribute>()?.Values;
        if (values is null)
        {
            return;
        }

        var target = schema.Type is { } type && type.HasFlag(JsonSchemaType.Array) && schema.Items is OpenApiSchema items ? items : schema;
        target.Enum = [.. values.Select(v => (JsonNode)JsonValue.Create(v))];
        if (target.Type is { } own && own.HasFlag(JsonSchemaType.Null))
        {
            target.Enum.Add(null!); // null is a value the member takes: enum restricts null too
        }
    }

    /// <summary>Answers are records (house style); requests are classes whose presence rules are their validation attributes.</summary>
    private static bool IsRecord(Type type) =>
        type.GetProperty("EqualityContract", BindingFlags.Instance | BindingFlags.NonPublic) is not null;

    private static void ApplyPresence(OpenApiSchema schema, Type type)
    {
        var nullability = new NullabilityInfoContext();
        schema.Required = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var property in type.GetProperties(BindingFlags.Instance | BindingFlags.Public))
        {
            var ignore = property.GetCustomAttribute<JsonIgnoreAttribute>()?.Condition;
            if (ignore == JsonIgnoreCondition.Always || property.GetCustomAttribute<JsonExtensionDataAttribute>() is not null)
            {
                continue;
            }

            var name = property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.SnakeCaseLower.ConvertName(property.Name);
            if (!schema.Properties!.TryGetValue(name, out var member))
            {
                continue;
            }

            var writtenOnlyWhenSet = ignore is JsonIgnoreCondition.WhenWritingNull or JsonIgnoreCondition.WhenWritingDefault;
            var falOptional = property.GetCustomAttribute<ApiOptionalAttribute>() is not null;
            if (!writtenOnlyWhenSet && !falOptional)
            {
                schema.Required.Add(name);
            }

            schema.Properties[name] = WithNullability(member, IsNullable(property, nullability) && !writtenOnlyWhenSet);
        }
    }

    private static bool IsNullable(PropertyInfo property, NullabilityInfoContext nullability) =>
        property.PropertyType.IsValueType
            ? Nullable.GetUnderlyingType(property.PropertyType) is not null
            : nullability.Create(property).ReadState == NullabilityState.Nullable;

    /// <summary>The member's schema, taking null exactly when <paramref name="nullable"/>: a type list with "null", or a reference or null.</summary>
    private static IOpenApiSchema WithNullability(IOpenApiSchema member, bool nullable)
    {
        switch (member)
        {
            case OpenApiSchemaReference reference:
                return nullable
                    ? new OpenApiSchema { Description = reference.Description, OneOf = [reference, new OpenApiSchema { Type = JsonSchemaType.Null }] }
                    : reference;
            case OpenApiSchema { Type: { } type } concrete:
                concrete.Type = nullable ? type | JsonSchemaType.Null : type & ~JsonSchemaType.Null;
                if (!nullable)
                {
                    concrete.Enum?.Remove(null!);
                }

                return concrete;
            case OpenApiSchema { AllOf: [OpenApiSchemaReference only] } wrapper:
                return WithNullability(new OpenApiSchemaReference(only.Reference.Id!, only.Reference.HostDocument) { Description = wrapper.Description }, nullable);
            case OpenApiSchema { OneOf: { Count: > 0 } choices } wrapper:
                var others = choices.Where(c => c is not OpenApiSchema { Type: JsonSchemaType.Null }).ToList();
                wrapper.OneOf = nullable ? [.. others, new OpenApiSchema { Type = JsonSchemaType.Null }] : others;
                return wrapper;
            default:
                return member;
        }
    }
}

/// <summary>
/// Per operation: its security (client key or access token, unless anonymous), the problems every route can answer
/// (401, 500), what each answer means, the request and response headers, and the events of an event stream, all from
/// the endpoint's metadata (<see cref="OpenApiRouteExtensions"/>). Answers are listed by status code.
/// </summary>
internal sealed class GatewayOperationFilter : IOperationFilter
{
    public const string BearerScheme = "Bearer";
    public const string ApiKeyScheme = "ApiKey";

    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        var metadata = context.ApiDescription.ActionDescriptor.EndpointMetadata;
        var responses = operation.Responses ??= [];
        if (metadata.OfType<IAuthorizeData>().Any() && !metadata.OfType<IAllowAnonymous>().Any())
        {
            operation.Security =
            [
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, context.Document)] = [] },
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiKeyScheme, context.Document)] = [] },
            ];
            AddProblem(responses, context, StatusCodes.Status401Unauthorized,
                "No client key (or access token) was sent, or one this gateway does not know, or an access token that is not valid "
                + "(not signed by the identity provider, expired, or for another audience).");
            Response(responses, StatusCodes.Status401Unauthorized).Headers!["WWW-Authenticate"] = new OpenApiHeader
            {
                Description = "The scheme to authenticate with: Bearer; for an access token that is not valid, RFC 6750's "
                    + "`Bearer realm=\"mai-image-gateway\", error=\"invalid_token\"` (with error_description when there is one).",
                Required = true,
                Schema = new OpenApiSchema { Type = JsonSchemaType.String },
            };
            AddProblem(responses, context, StatusCodes.Status403Forbidden,
                "A valid access token for an app (azp or appid claim) that is mapped to no client of this gateway.");
        }
        else
        {
            operation.Security = []; // said outright: this route takes no credentials (fal's webhook is signed instead)
        }

        AddProblem(responses, context, StatusCodes.Status500InternalServerError,
            "The gateway failed unexpectedly; trace_id identifies the request in its logs.");

        if (metadata.OfType<RequestBodyMetadata>().FirstOrDefault() is { } body)
        {
            operation.RequestBody = new OpenApiRequestBody
            {
                Description = body.Description,
                Required = true,
                Content = new Dictionary<string, OpenApiMediaType>
                {
                    [body.ContentType] = new() { Schema = context.SchemaGenerator.GenerateSchema(body.Type, context.SchemaRepository) },
                },
            };
        }

        foreach (var header in metadata.OfType<RequestHeaderMetadata>())
        {
            operation.Parameters ??= [];
            operation.Parameters.Add(new OpenApiParameter
            {
                Name = header.Name,
                In = ParameterLocation.Header,
                Required = header.Required,
                Description = header.Description,
                Schema = new OpenApiSchema { Type = JsonSchemaType.String, MaxLength = header.MaxLength },
                Example = header.Example is null ? null : JsonValue.Create(header.Example),
            });
        }

        foreach (var fallback in metadata.OfType<DefaultResponseMetadata>())
        {
            var schema = context.SchemaGenerator.GenerateSchema(fallback.Type, context.SchemaRepository);
            responses["default"] = new OpenApiResponse
            {
                Description = fallback.Description,
                Content = fallback.ContentTypes.ToDictionary(type => type, _ => new OpenApiMediaType { Schema = schema }),
            };
        }

        foreach (var header in metadata.OfType<ResponseHeaderMetadata>())
        {
            foreach (var status in header.Statuses)
            {
                Response(responses, status).Headers![header.Name] = new OpenApiHeader
                {
                    Description = header.Description,
                    Required = header.Required,
                    Schema = new OpenApiSchema { Type = header.Integer ? JsonSchemaType.Integer : JsonSchemaType.String },
                    Example = header.Example is null ? null : JsonValue.Create(header.Example),
                };
            }
        }

        foreach (var group in metadata.OfType<ResponseDescriptionMetadata>().GroupBy(d => d.Status))
        {
            Response(responses, group.Key).Description = string.Join(" ", group.Select(d => d.Description).Distinct());
        }

        foreach (var stream in metadata.OfType<ServerSentEventsMetadata>())
        {
            DescribeEvents(Response(responses, stream.Status), stream, context);
        }

        operation.Responses = Sorted(responses);
    }

    private static void AddProblem(OpenApiResponses responses, OperationFilterContext context, int status, string description)
    {
        var key = status.ToString(CultureInfo.InvariantCulture);
        if (responses.ContainsKey(key))
        {
            return;
        }

        responses[key] = new OpenApiResponse
        {
            Description = description,
            Content = new Dictionary<string, OpenApiMediaType>
            {
                [OpenApiRouteExtensions.ProblemContentType] = new() { Schema = context.SchemaGenerator.GenerateSchema(typeof(Problem), context.SchemaRepository) },
            },
        };
    }

    private static OpenApiResponse Response(OpenApiResponses responses, int status)
    {
        var key = status == ResponseHeaderMetadata.AnyOtherStatus ? "default" : status.ToString(CultureInfo.InvariantCulture);
        if (!responses.TryGetValue(key, out var found) || found is not OpenApiResponse response)
        {
            response = new OpenApiResponse { Description = ReasonPhrase(status) };
            responses[key] = response;
        }

        response.Headers ??= new Dictionary<string, IOpenApiHeader>();
        return response;
    }

    /// <summary>
    /// OpenAPI 3.1 has no way to type the events of a stream: the media type's <c>x-events</c> names each event
    /// and references the schema of its <c>data</c> (the tests check every event the gateway sends against it).
    /// </summary>
    private static void DescribeEvents(OpenApiResponse response, ServerSentEventsMetadata stream, OperationFilterContext context)
    {
        var events = new JsonObject();
        foreach (var (name, type) in stream.Events)
        {
            var reference = (OpenApiSchemaReference)context.SchemaGenerator.GenerateSchema(type, context.SchemaRepository);
            events[name] = new JsonObject { ["$ref"] = "#/components/schemas/" + reference.Reference.Id };
        }

        response.Content ??= new Dictionary<string, OpenApiMediaType>();
        var media = response.Content["text/event-stream"] = new OpenApiMediaType
        {
            Schema = new OpenApiSchema
            {
                Type = JsonSchemaType.String,
                Description = "Server-Sent Events; each event's data is one line of JSON, typed by the event's name in x-events.",
            },
        };
        media.Extensions = new Dictionary<string, IOpenApiExtension> { ["x-events"] = new JsonNodeExtension(events) };
    }

    private static OpenApiResponses Sorted(OpenApiResponses responses)
    {
        var sorted = new OpenApiResponses();
        foreach (var (key, value) in responses.OrderBy(r => r.Key, StringComparer.Ordinal))
        {
            sorted[key] = value;
        }

        return sorted;
    }

    private static string ReasonPhrase(int status) =>
        Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status) is { Length: > 0 } phrase ? phrase : status.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// The whole document: one <c>Problem</c> schema (ASP.NET Core's ProblemDetails and HttpValidationProblemDetails are
/// replaced by it wherever the framework's own results put them), schemas in name order, and the tags described.
/// </summary>
internal sealed class GatewayDocumentFilter : IDocumentFilter
{
    private static readonly string[] FrameworkProblems = ["ProblemDetails", "HttpValidationProblemDetails"];

    public void Apply(OpenApiDocument document, DocumentFilterContext context)
    {
        var problem = context.SchemaGenerator.GenerateSchema(typeof(Problem), context.SchemaRepository);
        foreach (var operation in document.Paths.Values.SelectMany(p => p.Operations?.Values.AsEnumerable() ?? []))
        {
            foreach (var response in (operation.Responses ?? []).Values.OfType<OpenApiResponse>())
            {
                foreach (var media in (response.Content ?? new Dictionary<string, OpenApiMediaType>()).Values)
                {
                    if (media.Schema is OpenApiSchemaReference { Reference.Id: { } id } && FrameworkProblems.Contains(id))
                    {
                        media.Schema = problem;
                    }
                }
            }
        }

        var schemas = document.Components?.Schemas;
        if (schemas is not null)
        {
            foreach (var name in FrameworkProblems)
            {
                schemas.Remove(name);
            }

            var ordered = schemas.OrderBy(s => s.Key, StringComparer.Ordinal).ToList();
            schemas.Clear();
            foreach (var (name, schema) in ordered)
            {
                schemas[name] = schema;
            }
        }

        document.Tags = new HashSet<OpenApiTag>(
        [
            new() { Name = "Generations", Description = "Submit text-to-image and edit jobs, follow them, read their results, list your own." },
            new() { Name = "Files", Description = "Upload input images for edits." },
            new() { Name = "Usage", Description = "Your usage and limits today." },
            new() { Name = "Webhooks", Description = "Called by fal, not by clients." },
            new() { Name = "fal client proxy", Description = "fal's client proxy protocol, for frontends that use @fal-ai/client with proxyUrl." },
        ]);
    }
}
