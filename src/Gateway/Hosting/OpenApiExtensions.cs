using System.Reflection;
using Microsoft.AspNetCore.Routing.Constraints;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace Gateway.Hosting;

internal static class OpenApiExtensions
{
    public static IHostApplicationBuilder AddGatewayOpenApi(this IHostApplicationBuilder builder)
    {
        builder.Services.AddEndpointsApiExplorer();
        // Swashbuckle's document route (swagger/{documentName}/swagger.{extension:regex(^(json|ya?ml)$)}) needs the regex
        // route constraint, which the slim builder (GatewayRunner) leaves out.
        builder.Services.Configure<RouteOptions>(options => options.SetParameterPolicy<RegexInlineRouteConstraint>("regex"));
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
            // Relative: the document describes the gateway that serves it, wherever that runs.
            options.AddServer(new OpenApiServer { Url = "/", Description = "The gateway serving this document." });
            options.AddSecurityDefinition(GatewayOperationFilter.BearerScheme, new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http,
                Scheme = "bearer",
                Description = "Your client key, or a signed-in user's OIDC access token from the identity provider the gateway is set up for: "
                    + "`Authorization: Bearer <client key or access token>`.",
            });
            options.AddSecurityDefinition(GatewayOperationFilter.ApiKeyScheme, new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.ApiKey,
                In = ParameterLocation.Header,
                Name = "X-Api-Key",
                Description = "Your client key, sent as `X-Api-Key: <key>`.",
            });
            options.IncludeXmlComments(Assembly.GetExecutingAssembly());
            options.SupportNonNullableReferenceTypes();
            options.SchemaFilter<GatewaySchemaFilter>();
            options.OperationFilter<GatewayOperationFilter>();
            options.DocumentFilter<GatewayDocumentFilter>();
        });
        return builder;
    }

    public static WebApplication MapGatewayOpenApi(this WebApplication app)
    {
        if (!app.Services.GetRequiredService<IOptions<GatewayOptions>>().Value.SwaggerEnabled)
        {
            return app;
        }

        // Only requests under /swagger pass through Swashbuckle's two middlewares (each matches the path on every
        // request it sees); the API's own requests skip them.
        app.UseWhen(context => context.Request.Path.StartsWithSegments("/swagger"), swagger =>
        {
            // 3.1: its schemas are JSON Schema 2020-12 (null is a type), which validators and client generators read as is.
            swagger.UseSwagger(options => options.OpenApiVersion = OpenApiSpecVersion.OpenApi3_1);
            swagger.UseSwaggerUI(options =>
            {
                options.SwaggerEndpoint("/swagger/v1/swagger.json", "MAI-Image-2.5 gateway v1");
                options.RoutePrefix = "swagger";
                options.DocumentTitle = "MAI-Image-2.5 gateway";
                options.EnablePersistAuthorization();
            });
        });
        return app;
    }
}
