using System.Reflection;
using System.Text.Json;
using Gateway.Hosting;
using Gateway.Storage;
using Microsoft.AspNetCore.Http.Metadata;

namespace Gateway.Generations;

/// <summary>
/// Writes a Generation whose result is spliced in from the store as fal sent it (streaming large
/// data-URI images piece by piece) instead of being re-serialised through .NET strings.
/// </summary>
internal sealed class GenerationJson(GenerationResponse body, StoredResult? result, Func<int, CancellationToken, Task<byte[]?>> loadBlob)
    : IResult, IStatusCodeHttpResult, IEndpointMetadataProvider
{
    public int? StatusCode => StatusCodes.Status200OK;

    internal GenerationResponse Body => body;

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json; charset=utf-8";
        var json = JsonSerializer.SerializeToUtf8Bytes(body, GatewayJsonContext.Default.GenerationResponse);
        if (result is null)
        {
            await response.Body.WriteAsync(json, httpContext.RequestAborted);
            return;
        }

        // The serialised object without its closing brace, then "result", then the brace.
        await response.Body.WriteAsync(json.AsMemory(0, json.Length - 1), httpContext.RequestAborted);
        await response.Body.WriteAsync(",\"result\":"u8.ToArray(), httpContext.RequestAborted);
        await result.WriteToAsync(response.Body, loadBlob, httpContext.RequestAborted);
        await response.Body.WriteAsync("}"u8.ToArray(), httpContext.RequestAborted);
    }

    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) =>
        builder.Metadata.Add(new ProducesResponseTypeMetadata(StatusCodes.Status200OK, typeof(GenerationResponse), ["application/json"]));
}

/// <summary>The model's output (<c>{images, description}</c>) as stored, streamed to the client.</summary>
internal sealed class ResultJson(StoredResult result, Func<int, CancellationToken, Task<byte[]?>> loadBlob)
    : IResult, IStatusCodeHttpResult, IEndpointMetadataProvider
{
    public int? StatusCode => StatusCodes.Status200OK;

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.StatusCode = StatusCodes.Status200OK;
        httpContext.Response.ContentType = "application/json; charset=utf-8";
        await result.WriteToAsync(httpContext.Response.Body, loadBlob, httpContext.RequestAborted);
    }

    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) =>
        builder.Metadata.Add(new ProducesResponseTypeMetadata(StatusCodes.Status200OK, typeof(ImageResult), ["application/json"]));
}
