using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace FalEmulator;

internal static class JwksEndpoints
{
    public static IEndpointRouteBuilder MapJwks(this IEndpointRouteBuilder app)
    {
        app.MapGet("/rest/.well-known/jwks.json", GetJwks);
        app.MapGet("/.well-known/jwks.json", GetJwks);
        return app;
    }

    private static JsonHttpResult<JwksDocument> GetJwks(EmulatorServices s) => TypedResults.Json(s.Keys.Jwks(), EmulatorJson.Default.JwksDocument);
}
