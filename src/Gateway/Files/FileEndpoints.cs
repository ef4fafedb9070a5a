using Gateway.Hosting;
using Gateway.Upstream;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace Gateway.Files;

internal static class FileEndpoints
{
    private const string Field = "file";

    public static RouteGroupBuilder MapFiles(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").RequireAuthorization().WithTags("Files");
        group.MapPost("/files", UploadFile)
            .WithName(nameof(UploadFile))
            .WithSummary("Upload an input image to fal storage, for an edit's image_urls")
            .WithDescription("multipart/form-data with one part named 'file': a PNG, JPEG, WebP or GIF image (the type is read "
                + "from its bytes). It streams to fal's storage; the answer's url goes into image_urls.")
            .Accepts<FileUploadForm>("multipart/form-data")
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesUpstreamProblems();
        return group;
    }

    public static async Task<Results<Created<FileResponse>, ValidationProblem, ProblemHttpResult>> UploadFile(
        HttpRequest request, FalQueueClient fal, IOptions<GatewayOptions> options, CancellationToken cancellationToken)
    {
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var mediaType)
            || !mediaType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(mediaType.Boundary).Value is not { Length: > 0 } boundary)
        {
            return FileProblem(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", "unsupported-media-type",
                "Send the image as multipart/form-data with a part named 'file'.");
        }

        var reader = new MultipartReader(boundary, request.Body);
        while (await reader.ReadNextSectionAsync(cancellationToken) is { } section)
        {
            if (ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)
                && HeaderUtilities.RemoveQuotes(disposition.Name).Value == Field)
            {
                return await UploadAsync(section.Body, disposition, fal, options.Value.MaxUploadBytes, cancellationToken);
            }
        }

        return TypedResults.ValidationProblem(
            new Dictionary<string, string[]> { [Field] = ["A multipart part named 'file' holding the image is required."] },
            detail: "No file was sent.");
    }

    private static async Task<Results<Created<FileResponse>, ValidationProblem, ProblemHttpResult>> UploadAsync(
        Stream body, ContentDispositionHeaderValue disposition, FalQueueClient fal, long maxBytes, CancellationToken cancellationToken)
    {
        var head = new byte[ImageSniffer.HeaderLength];
        var headLength = await body.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken);
        if (headLength == 0)
        {
            return TypedResults.ValidationProblem(
                new Dictionary<string, string[]> { [Field] = ["The file is empty."] }, detail: "The file is empty.");
        }

        if (ImageSniffer.Detect(head.AsSpan(0, headLength)) is not var (contentType, extension))
        {
            return FileProblem(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", "unsupported-media-type",
                "The file must be a PNG, JPEG, WebP or GIF image; its bytes are none of these.");
        }

        var fileName = SafeFileName(disposition, extension);
        var target = await fal.InitiateUploadAsync(contentType, fileName, cancellationToken);
        var upload = new UploadStream(head[..headLength], body, maxBytes);
        try
        {
            await fal.PutUploadAsync(target.UploadUrl!, upload, contentType, cancellationToken);
        }
        catch (FalUpstreamException) when (upload.Exceeded)
        {
            return TooLarge(maxBytes);
        }

        return TypedResults.Created(target.FileUrl, new FileResponse(target.FileUrl!, contentType, fileName, upload.BytesRead));
    }

    private static ProblemHttpResult TooLarge(long maxBytes) =>
        FileProblem(StatusCodes.Status413PayloadTooLarge, "File too large", "body-too-large",
            $"The file is larger than the gateway accepts ({maxBytes} bytes, Gateway__MaxUploadBytes).");

    private static ProblemHttpResult FileProblem(int status, string title, string slug, string detail) =>
        TypedResults.Problem(detail, statusCode: status, title: title, type: ProblemTypes.For(slug),
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
