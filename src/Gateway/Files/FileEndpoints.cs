using Gateway.Hosting;
using Gateway.Upstream;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace Gateway.Files;

internal static class FileEndpoints
{
    public static IHostApplicationBuilder AddFiles(this IHostApplicationBuilder builder)
    {
        builder.Services.AddValidatedOptions<FilesOptions>(FilesOptions.SectionName);
        builder.Services.AddGatewayJson(FileJsonContext.Default);
        return builder;
    }

    private const string Field = FileUploadReader.FieldName;

    // RFC 2046's limit, which ASP.NET Core's own form reading enforces too.
    private const int MaxBoundaryLength = 70;

    // Room for the form around the file: boundary lines, part headers, a few small fields.
    private const long EnvelopeBytes = 64 * 1024;

    public static RouteGroupBuilder MapFiles(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").RequireAuthorization().WithTags("Files");
        group.MapPost("/files", UploadFile)
            .WithName(nameof(UploadFile))
            .WithSummary("Upload an input image to fal storage, for an edit's image_urls")
            .WithDescription("multipart/form-data with one part named 'file': a PNG, JPEG, WebP or GIF image (the type is read "
                + "from its bytes). The whole body is read (up to its closing boundary) before the file goes to fal's storage; the answer's url "
                + "goes into image_urls.")
            .Accepts<FileUploadForm>("multipart/form-data")
            .DescribesResponse(StatusCodes.Status201Created, "Stored on fal's CDN: url goes into an edit's image_urls (Location is the same URL).")
            .WithResponseHeader("Location", "The file's URL on fal's CDN.", [StatusCodes.Status201Created], required: true,
                example: "https://v3.fal.media/files/example/input.png")
            .ProducesProblemFor(StatusCodes.Status400BadRequest, "No part named 'file', more than one, an empty file, or a malformed multipart body (errors names file).")
            .ProducesProblemFor(StatusCodes.Status413PayloadTooLarge, "The file is larger than the gateway accepts.")
            .ProducesProblemFor(StatusCodes.Status415UnsupportedMediaType, "The body is not multipart/form-data, or the file is not a PNG, JPEG, WebP or GIF image.")
            .ProducesUpstreamProblems();
        return group;
    }

    public static async Task<Results<Created<FileResponse>, ValidationProblem, ProblemHttpResult>> UploadFile(
        HttpRequest request, FalQueueClient fal, IOptions<FilesOptions> options, CancellationToken cancellationToken)
    {
        var maxBytes = options.Value.MaxUploadBytes;
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var mediaType)
            || !mediaType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
        {
            return FileProblem(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", ProblemTypes.UnsupportedMediaType,
                "Send the image as multipart/form-data with a part named 'file'.");
        }

        if (HeaderUtilities.RemoveQuotes(mediaType.Boundary).Value is not { Length: > 0 and <= MaxBoundaryLength } boundary)
        {
            return Malformed($"The Content-Type needs a boundary parameter of 1 to {MaxBoundaryLength} characters (RFC 2046).");
        }

        var maxBody = maxBytes + EnvelopeBytes;
        if (request.ContentLength > maxBody)
        {
            return TooLarge(maxBytes);
        }

        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = maxBody; // a chunked body too is cut off here, whatever Gateway__MaxRequestBodyBytes says
        }

        await using var upload = new FileUploadReader(request.Body, boundary, maxBytes);
        if (await upload.ReadAsync(cancellationToken) is { } refusal)
        {
            return Refused(refusal, boundary, maxBytes);
        }

        // Only now, with the whole upload read and known to be an image, does fal hear of it.
        var (contentType, extension) = upload.Type;
        var fileName = SafeFileName(upload.Disposition!, extension);
        var size = upload.Length;
        var target = await fal.InitiateUploadAsync(contentType, fileName, cancellationToken);
        await fal.PutUploadAsync(target.UploadUrl!, upload.Content, contentType, cancellationToken);
        return TypedResults.Created(target.FileUrl, new FileResponse(target.FileUrl!, contentType, fileName, size));
    }

    private static Results<Created<FileResponse>, ValidationProblem, ProblemHttpResult> Refused(UploadRefusal refusal, string boundary, long maxBytes) =>
        refusal switch
        {
            UploadRefusal.Malformed => Malformed($"The multipart body is malformed: each part needs a --{boundary} line, headers (at most "
                + $"{MultipartReader.DefaultHeadersCountLimit} lines, {MultipartReader.DefaultHeadersLengthLimit} bytes), a blank line, then its content."),
            UploadRefusal.Incomplete => Malformed($"The multipart body ended before its closing boundary (--{boundary}--): the upload is incomplete."),
            UploadRefusal.NoFilePart => Invalid("A multipart part named 'file' holding the image is required.", "No file was sent."),
            UploadRefusal.SeveralFileParts => Invalid("Send exactly one multipart part named 'file'.", "More than one file was sent."),
            UploadRefusal.Empty => Invalid("The file is empty.", "The file is empty."),
            UploadRefusal.NotAnImage => FileProblem(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", ProblemTypes.UnsupportedMediaType,
                "The file must be a PNG, JPEG, WebP or GIF image; its bytes are none of these."),
            UploadRefusal.TooLarge => TooLarge(maxBytes),
            _ => throw new ArgumentOutOfRangeException(nameof(refusal), refusal, null),
        };

    private static ValidationProblem Invalid(string message, string detail) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [Field] = [message] }, detail: detail);

    private static ValidationProblem Malformed(string detail) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [Field] = [detail] }, detail: detail,
            title: "Malformed multipart body", type: ProblemTypes.MalformedMultipart);

    private static ProblemHttpResult TooLarge(long maxBytes) =>
        FileProblem(StatusCodes.Status413PayloadTooLarge, "File too large", ProblemTypes.BodyTooLarge,
            $"The file is larger than the gateway accepts ({maxBytes} bytes, Gateway__MaxUploadBytes).");

    private static ProblemHttpResult FileProblem(int status, string title, string type, string detail) =>
        TypedResults.Problem(detail, statusCode: status, title: title, type: type,
            extensions: new Dictionary<string, object?> { ["errors"] = new Dictionary<string, string[]> { [Field] = [detail] } });

    /// <summary>The caller's file name reduced to safe characters, with the extension its bytes deserve.</summary>
    private static string SafeFileName(ContentDispositionHeaderValue disposition, string extension)
    {
        var given = HeaderUtilities.RemoveQuotes(disposition.FileNameStar).Value
            ?? HeaderUtilities.RemoveQuotes(disposition.FileName).Value ?? "";
        var stem = Path.GetFileNameWithoutExtension(given.Replace('\\', '/').Split('/')[^1]);
        stem = new string([.. stem.Where(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_').Take(80)]);
        return $"{(stem.Length > 0 ? stem : "upload")}.{extension}";
    }
}

/// <summary>The form <c>POST /v1/files</c> takes (for the OpenAPI document; the body is read as a stream).</summary>
public sealed class FileUploadForm
{
    /// <summary>The image: PNG, JPEG, WebP or GIF.</summary>
    public IFormFile? File { get; init; }
}
