using System.ComponentModel.DataAnnotations;
using System.Reflection;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace Gateway.Hosting;

internal static class OpenApiExtensions
{
    public static IHostApplicationBuilder AddGatewayOpenApi(this IHostApplicationBuilder builder)
    {
        builder.Services.AddEndpointsApiExplorer();
        // Describe the JSON the API really speaks (snake_case), not MVC's default options.
        builder.Services.AddSingleton<ISerializerDataContractResolver>(services =>
            new JsonSerializerDataContractResolver(services.GetRequiredService<IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions));
        builder.Services.AddSwaggerGen(options =>
        {
            options.SwaggerDoc("v1", new OpenApiInfo
            {
                Title = "MAI-Image-2.5 gateway",
                Version = "v1",
                Description = "Generate and edit images with fal's microsoft/mai-image-2.5 without holding the FAL key. "
                    + "Authenticate with your client key (Authorize button): `Authorization: Bearer <key>` or `X-Api-Key: <key>`; "
                    + "a browser frontend sends its signed-in user's OIDC access token as `Authorization: Bearer <JWT>` instead. "
                    + "In Development the local key is `dev-local-key`.",
            });
            options.AddSecurityDefinition("Bearer", new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http,
                Scheme = "bearer",
                Description = "Your client key, or a signed-in user's OIDC access token, sent as `Authorization: Bearer <value>`.",
            });
            options.AddSecurityDefinition("ApiKey", new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.ApiKey,
                In = ParameterLocation.Header,
                Name = "X-Api-Key",
                Description = "Your client key, sent as `X-Api-Key: <key>`.",
            });
            options.AddSecurityRequirement(document => new OpenApiSecurityRequirement
            {
                [new OpenApiSecuritySchemeReference("Bearer", document)] = [],
            });
            options.AddSecurityRequirement(document => new OpenApiSecurityRequirement
            {
                [new OpenApiSecuritySchemeReference("ApiKey", document)] = [],
            });
            options.IncludeXmlComments(Assembly.GetExecutingAssembly());
            options.SupportNonNullableReferenceTypes();
            options.SchemaFilter<AllowedValuesSchemaFilter>();
        });
        return builder;
    }

    public static WebApplication MapGatewayOpenApi(this WebApplication app)
    {
        if (!app.Services.GetRequiredService<IOptions<GatewayOptions>>().Value.SwaggerEnabled)
        {
            return app;
        }

        app.UseSwagger();
        app.UseSwaggerUI(options =>
        {
            options.SwaggerEndpoint("/swagger/v1/swagger.json", "MAI-Image-2.5 gateway v1");
            options.RoutePrefix = "swagger";
            options.DocumentTitle = "MAI-Image-2.5 gateway";
            options.EnablePersistAuthorization();
        });
        return app;
    }

    /// <summary>
    /// <c>[AllowedValues]</c> becomes the schema's <c>enum</c> (the ratios are not C# identifiers, so they stay
    /// strings), and the catch-all for unknown fields is hidden: the schema says no other fields are allowed.
    /// </summary>
    private sealed class AllowedValuesSchemaFilter : ISchemaFilter
    {
        public void Apply(IOpenApiSchema schema, SchemaFilterContext context)
        {
            if (schema is not OpenApiSchema concrete)
            {
                return;
            }

            if (context.MemberInfo?.GetCustomAttribute<AllowedValuesAttribute>() is { } allowed)
            {
                concrete.Enum = allowed.Values.Where(v => v is not null).Select(v => (JsonNode)JsonValue.Create(v!.ToString())!).ToList();
            }

            if (context.Type.GetProperties().Any(p => p.GetCustomAttribute<System.Text.Json.Serialization.JsonExtensionDataAttribute>() is not null))
            {
                concrete.AdditionalPropertiesAllowed = false;
                concrete.AdditionalProperties = null;
            }
        }
    }
}
