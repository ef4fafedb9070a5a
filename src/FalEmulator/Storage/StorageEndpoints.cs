using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace FalEmulator;

/// <summary>rest.fal.ai storage (initiate, multipart) and the CDN side: upload targets and /files.</summary>
internal static class StorageEndpoints
{
    public static IEndpointRouteBuilder MapStorage(this IEndpointRouteBuilder app)
    {
        app.MapPost("/rest/storage/upload/initiate", Initiate);
        app.MapPost("/rest/storage/upload/initiate-multipart", Initiate);
        app.MapPost("/rest/storage/upload/complete-multipart", CompleteMultipart);
        // fal's signed upload URLs and CDN answer browsers on any origin: a page's storage.upload PUTs the file straight there.
        app.MapPut("/upload/{token}", PutFile).RequireCors(AnyOrigin);
        app.MapPut("/upload/{token}/{part:int}", PutPart).RequireCors(AnyOrigin);
        app.MapPost("/upload/{token}/complete", CompleteFromUploadUrl).RequireCors(AnyOrigin);
        app.MapGet("/files/{**name}", GetFile).RequireCors(AnyOrigin);
        return app;
    }

    private static void AnyOrigin(Microsoft.AspNetCore.Cors.Infrastructure.CorsPolicyBuilder policy) =>
        policy.AllowAnyOrigin().AllowAnyMethod().AllowAnyHeader();

    private static async Task<IResult> Initiate(HttpContext context, EmulatorServices s)
    {
        s.State.CountUpload();
        if (s.Auth.Check(context) is { } unauthorized)
        {
            return unauthorized;
        }

        if (await s.Faults.Apply(context, s.Faults.Take(FalOperation.Upload, null, null), null) is { } faulted)
        {
            return faulted;
        }

        UploadInitiateRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync(context.Request.Body, EmulatorJson.Default.UploadInitiateRequest, context.RequestAborted);
        }
        catch (JsonException)
        {
            request = null;
        }

        var contentType = string.IsNullOrWhiteSpace(request?.ContentType) ? "application/octet-stream" : request.ContentType;
        var fileName = SafeName(request?.FileName, contentType);
        var name = $"{Guid.NewGuid():N}/{fileName}";
        var token = s.Files.Initiate(name, contentType);
        var root = QueueEndpoints.Root(context);
        return FalErrors.Json(context, StatusCodes.Status200OK,
            new UploadInitiateResponse($"{root}/upload/{token}", $"{root}/files/{name}"), EmulatorJson.Default.UploadInitiateResponse);
    }

    // The signed upload URL needs no key, as fal's does not.
    private static async Task<IResult> PutFile(HttpContext context, string token, EmulatorServices s)
    {
        s.State.CountUploadPut();
        if (s.Files.Pending(token) is not { } upload)
        {
            return FalErrors.Detail(context, StatusCodes.Status404NotFound, "Upload not found");
        }

        var bytes = await ReadAll(context);
        var contentType = context.Request.ContentType is { Length: > 0 } sent ? sent : upload.ContentType;
        s.Files.Put(upload.FileName, bytes, contentType);
        return Results.Ok();
    }

    private static async Task<IResult> PutPart(HttpContext context, string token, int part, EmulatorServices s)
    {
        s.State.CountUploadPut();
        if (s.Files.Pending(token) is not { } upload)
        {
            return FalErrors.Detail(context, StatusCodes.Status404NotFound, "Upload not found");
        }

        var bytes = await ReadAll(context);
        upload.Parts[part] = bytes;
        context.Response.Headers.ETag = $"\"{Convert.ToHexStringLower(SHA256.HashData(bytes))[..32]}\"";
        return Results.Ok();
    }

    private static Task<IResult> CompleteFromUploadUrl(HttpContext context, string token, EmulatorServices s) =>
        Complete(context, token, s);

    private static async Task<IResult> CompleteMultipart(HttpContext context, EmulatorServices s)
    {
        if (s.Auth.Check(context) is { } unauthorized)
        {
            return unauthorized;
        }

        MultipartCompleteRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync(context.Request.Body, EmulatorJson.Default.MultipartCompleteRequest, context.RequestAborted);
        }
        catch (JsonException)
        {
            request = null;
        }

        var token = request?.UploadId ?? request?.UploadUrl?.TrimEnd('/').Split('/')[^1];
        return token is null
            ? FalErrors.Detail(context, StatusCodes.Status400BadRequest, "upload_url or upload_id is required")
            : await Complete(context, token, s, request?.Parts);
    }

    private static async Task<IResult> Complete(HttpContext context, string token, EmulatorServices s, IReadOnlyList<MultipartPart>? parts = null)
    {
        if (parts is null && context.Request.ContentLength is > 0)
        {
            try
            {
                var request = await JsonSerializer.DeserializeAsync(context.Request.Body, EmulatorJson.Default.MultipartCompleteRequest, context.RequestAborted);
                parts = request?.Parts;
            }
            catch (JsonException)
            {
                parts = null;
            }
        }

        if (s.Files.Pending(token) is not { } upload)
        {
            return FalErrors.Detail(context, StatusCodes.Status404NotFound, "Upload not found");
        }

        if (!s.Files.Complete(token, parts?.Select(p => p.PartNumber)))
        {
            return FalErrors.Detail(context, StatusCodes.Status400BadRequest, "Missing parts");
        }

        return FalErrors.Json(context, StatusCodes.Status200OK,
            new MultipartCompleteResponse($"{QueueEndpoints.Root(context)}/files/{upload.FileName}"), EmulatorJson.Default.MultipartCompleteResponse);
    }

    /// <summary>
    /// The CDN: no key, every GET counted. A file past the expiry its job asked for (X-Fal-Object-Lifecycle-Preference)
    /// is gone (404); a "download" fault (a setting's rule, or the job's prompt) answers as fal's infrastructure would.
    /// </summary>
    private static async Task<IResult> GetFile(HttpContext context, string name, EmulatorServices s)
    {
        s.State.CountDownload(name);
        var file = s.Files.Get(name, s.Time.GetUtcNow());
        var job = file?.RequestId is { } requestId ? s.Scheduler.Find(requestId) : null;
        if (await s.Faults.Apply(context, s.Faults.Take(FalOperation.Download, file?.RequestId, job?.Directives), null) is { } faulted)
        {
            return faulted;
        }

        return file is null ? TypedResults.NotFound() : TypedResults.Bytes(file.Bytes, file.ContentType);
    }

    private static async Task<byte[]> ReadAll(HttpContext context)
    {
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        return buffer.ToArray();
    }

    private static string SafeName(string? fileName, string contentType)
    {
        var name = Path.GetFileName(fileName ?? "");
        name = new string([.. name.Where(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_')]);
        if (name.Length > 0)
        {
            return name;
        }

        var ext = contentType.Split('/') is [_, var sub] ? sub.Split(';')[0] : "bin";
        return $"file.{ext}";
    }
}
