using System.Reflection;
using System.Text.Json;
using Gateway.Storage;
using Microsoft.AspNetCore.Http.Metadata;

namespace Gateway.Generations;

/// <summary>
/// Writes a Generation whose result is spliced in from the store as fal sent it (streaming large
/// data-URI images piece by piece) instead of being re-serialised through .NET strings.
/// </summary>
internal sealed class GenerationJson(GenerationResponse body, StoredResult? result, ResultParts parts, string? location = null)
    : IResult, IStatusCodeHttpResult, IEndpointMetadataProvider
{
    public int? StatusCode => StatusCodes.Status200OK;

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json; charset=utf-8";
        if (location is not null)
        {
            response.Headers.Location = location;
        }

        var json = JsonSerializer.SerializeToUtf8Bytes(body, GenerationJsonContext.Default.GenerationResponse);
        await WriteAsync(response.Body, json, result, parts, httpContext.RequestAborted);
    }

    /// <summary>The serialised Generation without its closing brace, then <c>"result":</c> and the stored result, then the brace.</summary>
    internal static async Task WriteAsync(Stream output, byte[] json, StoredResult? result, ResultParts parts, CancellationToken cancellationToken)
    {
        if (result is null)
        {
            await output.WriteAsync(json, cancellationToken);
            return;
        }

        await output.WriteAsync(json.AsMemory(0, json.Length - 1), cancellationToken);
        await output.WriteAsync(",\"result\":"u8.ToArray(), cancellationToken);
        await result.WriteToAsync(output, parts.LoadBlob, cancellationToken, parts.ImageUrl);
        await output.WriteAsync("}"u8.ToArray(), cancellationToken);
    }

    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) =>
        builder.Metadata.Add(new ProducesResponseTypeMetadata(StatusCodes.Status200OK, typeof(GenerationResponse), ["application/json"]));
}

/// <summary>The model's output (<c>{images, description}</c>) as stored, streamed to the client.</summary>
internal sealed class ResultJson(StoredResult result, ResultParts parts)
    : IResult, IStatusCodeHttpResult, IEndpointMetadataProvider
{
    public int? StatusCode => StatusCodes.Status200OK;

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.StatusCode = StatusCodes.Status200OK;
        httpContext.Response.ContentType = "application/json; charset=utf-8";
        await result.WriteToAsync(httpContext.Response.Body, parts.LoadBlob, httpContext.RequestAborted, parts.ImageUrl);
    }

    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) =>
        builder.Metadata.Add(new ProducesResponseTypeMetadata(StatusCodes.Status200OK, typeof(ImageResult), ["application/json"]));
}
