using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.Json.Serialization;
using Gateway.Hosting;
using Gateway.Upstream;
using Microsoft.Extensions.Options;

namespace Gateway.Generations;

public static class GenerationStatus
{
    public const string InQueue = "IN_QUEUE";
    public const string InProgress = "IN_PROGRESS";
    public const string Completed = "COMPLETED";
    public const string Failed = "FAILED";

    public static bool IsTerminal(string status) => status is Completed or Failed;
}

/// <summary>Fields both models take. Unknown fields are refused, naming each one.</summary>
public abstract class ImageRequest : IValidatableObject
{
    /// <summary>What the image should show.</summary>
    /// <example>A lighthouse on a cliff at dusk, photorealistic</example>
    [Required(ErrorMessage = "prompt is required and must not be blank.")]
    [VisibleText(ErrorMessage = "prompt must hold visible text, and no control characters but tab and line breaks.")]
    public string? Prompt { get; init; }

    /// <summary>How many images to make (each is billed).</summary>
    /// <example>1</example>
    [Range(1, 4, ErrorMessage = "num_images must be from 1 to 4.")]
    [DefaultValue(1)]
    public int? NumImages { get; init; }

    /// <summary>The image format.</summary>
    /// <example>png</example>
    [AllowedValues(null, "jpeg", "png", "webp", ErrorMessage = "output_format must be one of: jpeg, png, webp.")]
    [DefaultValue("png")]
    public string? OutputFormat { get; init; }

    /// <summary>True: images come back as data URIs and fal keeps no request history.</summary>
    /// <example>false</example>
    [DefaultValue(false)]
    public bool? SyncMode { get; init; }

    /// <summary>Anything else the caller sent; every entry is refused by validation.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? UnknownFields { get; set; }

    public virtual IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var options = OptionsFrom(validationContext);
        if (Prompt is { Length: > 0 } prompt && prompt.Length > options.MaxPromptLength)
        {
            yield return new ValidationResult(
                $"prompt must be at most {options.MaxPromptLength} characters (it has {prompt.Length}).", ["prompt"]);
        }

        foreach (var name in UnknownFields?.Keys ?? Enumerable.Empty<string>())
        {
            yield return new ValidationResult($"'{name}' is not a field of this request.", [name]);
        }
    }

    internal abstract FalImageInput ToFalInput();

    /// <summary>The gateway's limits (prompt length, data-URI size…), or the defaults outside a request.</summary>
    protected static GenerationOptions OptionsFrom(ValidationContext validationContext) =>
        (validationContext.GetService(typeof(IOptions<GenerationOptions>)) as IOptions<GenerationOptions>)?.Value ?? new GenerationOptions();
}

/// <summary>A text-to-image job for <c>microsoft/mai-image-2.5</c>.</summary>
public sealed class GenerateRequest : ImageRequest
{
    /// <summary>The shape of the image; <c>auto</c> lets the model choose.</summary>
    /// <example>16:9</example>
    [AllowedValues(null, "auto", "21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16",
        ErrorMessage = "aspect_ratio must be one of: auto, 21:9, 16:9, 3:2, 4:3, 5:4, 1:1, 4:5, 3:4, 2:3, 9:16.")]
    [DefaultValue("auto")]
    public string? AspectRatio { get; init; }

    internal override FalImageInput ToFalInput() =>
        new(Prompt!, null, NumImages, AspectRatio, OutputFormat, SyncMode);
}

/// <summary>An image-edit job for <c>microsoft/mai-image-2.5/edit</c>.</summary>
public sealed class EditRequest : ImageRequest
{
    /// <summary>The image to edit (fal's edit model takes one): an http(s) URL (e.g. from <c>POST /v1/files</c>) or a <c>data:image/…;base64,</c> URI.</summary>
    /// <example>["https://v3.fal.media/files/example/input.png"]</example>
    [Required(ErrorMessage = "image_urls is required: give at least one image URL.")]
    [MinLength(1, ErrorMessage = "image_urls must hold at least one image URL.")]
    public IReadOnlyList<string>? ImageUrls { get; init; }

    /// <summary>The shape of the image; <c>auto</c> matches the input.</summary>
    /// <example>auto</example>
    [AllowedValues(null, "auto", "1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3",
        ErrorMessage = "aspect_ratio must be one of: auto, 1:1, 4:3, 3:4, 16:9, 9:16, 3:2, 2:3.")]
    [DefaultValue("auto")]
    public string? AspectRatio { get; init; }

    public override IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var result in base.Validate(validationContext))
        {
            yield return result;
        }

        var options = OptionsFrom(validationContext);
        var urls = ImageUrls ?? [];
        if (urls.Count > options.MaxImageUrls)
        {
            yield return new ValidationResult(options.MaxImageUrls == 1
                ? $"image_urls must hold exactly one image (it has {urls.Count}): fal's edit model takes one."
                : $"image_urls may hold at most {options.MaxImageUrls} images (it has {urls.Count}).", ["image_urls"]);
        }

        for (var i = 0; i < urls.Count; i++)
        {
            if (ImageUrlRules.Check(urls[i], options.MaxImageDataUriBytes) is { } problem)
            {
                yield return new ValidationResult(problem, [$"image_urls[{i}]"]);
            }
        }
    }

    internal override FalImageInput ToFalInput() =>
        new(Prompt!, ImageUrls, NumImages, AspectRatio, OutputFormat, SyncMode);
}

/// <summary>Exactly what goes to fal: only the fields the caller set, named as fal names them.</summary>
internal sealed record FalImageInput(
    string Prompt,
    IReadOnlyList<string>? ImageUrls,
    int? NumImages,
    string? AspectRatio,
    string? OutputFormat,
    bool? SyncMode);

/// <summary>A generation job: its status, and its result or error once it has ended.</summary>
/// <param name="Id">fal's request id.</param>
/// <param name="Model">The fal model the job runs on.</param>
/// <param name="Status">IN_QUEUE, IN_PROGRESS, COMPLETED or FAILED.</param>
/// <param name="QueuePosition">0-based place in fal's queue while IN_QUEUE.</param>
/// <param name="CreatedAt">When the gateway accepted the job.</param>
/// <param name="CompletedAt">When the job ended.</param>
/// <param name="Error">The failure, as a problem, when FAILED.</param>
/// <param name="Links">Where to follow the job.</param>
/// <param name="ImageCopy">
/// With an image store, once COMPLETED: <c>pending</c> (the images are being copied; the result shows fal's URLs for now),
/// <c>stored</c> (the result shows the gateway's links) or <c>failed</c> (the result keeps fal's URLs, which expire).
/// Absent without an image store.
/// </param>
/// <param name="Result">The images, present only when COMPLETED.</param>
/// <param name="User">The signed-in user who submitted the job (from the access token); absent when a client key submitted it.</param>
[ApiExample("""
    {
      "id": "764cabcf-b745-4b3e-ae38-1200304cf45b",
      "model": "microsoft/mai-image-2.5",
      "status": "COMPLETED",
      "queue_position": null,
      "created_at": "2026-11-24T10:00:00+00:00",
      "completed_at": "2026-11-24T10:00:09+00:00",
      "error": null,
      "links": {
        "self": "/v1/generations/764cabcf-b745-4b3e-ae38-1200304cf45b",
        "status": "/v1/generations/764cabcf-b745-4b3e-ae38-1200304cf45b/status",
        "result": "/v1/generations/764cabcf-b745-4b3e-ae38-1200304cf45b/result",
        "events": "/v1/generations/764cabcf-b745-4b3e-ae38-1200304cf45b/events",
        "cancel": "/v1/generations/764cabcf-b745-4b3e-ae38-1200304cf45b/cancel"
      },
      "result": {
        "images": [
          { "url": "https://v3.fal.media/files/example/lighthouse.png", "content_type": "image/png", "file_name": "lighthouse.png", "file_size": 1482133, "width": 1024, "height": 576 }
        ],
        "description": "A lighthouse on a cliff at dusk."
      }
    }
    """)]
public sealed record GenerationResponse(
    string Id,
    string Model,
    [property: ApiValues(GenerationStatus.InQueue, GenerationStatus.InProgress, GenerationStatus.Completed, GenerationStatus.Failed)] string Status,
    int? QueuePosition,
    DateTimeOffset CreatedAt,
    DateTimeOffset? CompletedAt,
    GenerationError? Error,
    GenerationLinks Links,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ImageCopy = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ImageResult? Result = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? User = null);

/// <summary>The model's output, as fal returned it (fal may add fields).</summary>
/// <param name="Images">The generated images.</param>
/// <param name="Description">The model's description of what it made.</param>
[ApiExtensible]
public sealed record ImageResult(IReadOnlyList<ImageFile> Images, [property: ApiOptional] string? Description);

/// <summary>One generated image, as fal returned it.</summary>
/// <param name="Url">Where the image is: fal's CDN URL, or a data: URI when the job ran with sync_mode.</param>
/// <param name="ContentType">Its media type, e.g. image/png.</param>
/// <param name="FileName">Its file name.</param>
/// <param name="FileSize">Its size in bytes.</param>
/// <param name="Width">Its width in pixels.</param>
/// <param name="Height">Its height in pixels.</param>
[ApiExtensible]
public sealed record ImageFile(
    string Url,
    [property: ApiOptional] string? ContentType,
    [property: ApiOptional] string? FileName,
    [property: ApiOptional] long? FileSize,
    [property: ApiOptional] int? Width,
    [property: ApiOptional] int? Height);

/// <summary>Why a generation failed, as a problem (RFC 9457) with fal's status code and field errors.</summary>
/// <param name="Type">The problem type, e.g. urn:mai-image-gateway:problem:generation-failed.</param>
/// <param name="Title">A short summary.</param>
/// <param name="Status">The status code GET …/result answers with for this failure.</param>
/// <param name="Detail">What happened.</param>
/// <param name="FalStatus">The status code fal answered, when known.</param>
/// <param name="FalErrorType">fal's error type, when it gave one.</param>
/// <param name="Errors">fal's field errors by field, when it gave them.</param>
public sealed record GenerationError(
    string Type,
    string Title,
    int Status,
    string Detail,
    int? FalStatus,
    string? FalErrorType,
    IReadOnlyDictionary<string, string[]>? Errors)
{
    internal static GenerationError From(FalFailure failure) => new(
        failure.ProblemType, failure.Title, (int)failure.GatewayStatus, failure.Detail,
        failure.FalStatusCode, failure.ErrorType, failure.Errors);
}

/// <summary>Where to follow a generation (paths on this gateway).</summary>
/// <param name="Self">The Generation.</param>
/// <param name="Status">Its status only.</param>
/// <param name="Result">Its result.</param>
/// <param name="Events">Its Server-Sent Events; when the gateway signs links it carries a short-lived <c>ticket</c>, so a page's EventSource can open it as it is.</param>
/// <param name="Cancel">Where to POST to cancel it.</param>
public sealed record GenerationLinks(string Self, string Status, string Result, string Events, string Cancel)
{
    /// <summary>The link-ticket resource of the event stream.</summary>
    internal const string EventsResource = "events";

    /// <summary>The link-ticket resource of the images in the gateway's image store: one ticket opens every image of a generation.</summary>
    internal const string ImagesResource = "images";

    /// <summary>The plain routes, which need the caller's key or token.</summary>
    internal static GenerationLinks For(string id)
    {
        var self = SelfFor(id);
        return new GenerationLinks(self, self + "/status", self + "/result", self + "/events", self + "/cancel");
    }

    /// <summary>The generation's own route.</summary>
    internal static string SelfFor(string id) => $"/v1/generations/{Uri.EscapeDataString(id)}";
}

/// <summary>Status only: cheap, safe to poll every 100 ms.</summary>
/// <param name="Id">fal's request id.</param>
/// <param name="Status">IN_QUEUE, IN_PROGRESS, COMPLETED or FAILED.</param>
/// <param name="QueuePosition">0-based place in fal's queue while IN_QUEUE.</param>
/// <param name="Logs">fal's logs, with logs=true.</param>
/// <param name="Links">Where to follow the job.</param>
public sealed record StatusResponse(
    string Id,
    [property: ApiValues(GenerationStatus.InQueue, GenerationStatus.InProgress, GenerationStatus.Completed, GenerationStatus.Failed)] string Status,
    int? QueuePosition,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<FalLog>? Logs,
    GenerationLinks Links);

/// <summary>fal was asked to cancel the job; it may still complete.</summary>
/// <param name="Status">Always CANCELLATION_REQUESTED.</param>
public sealed record CancelResponse([property: ApiValues("CANCELLATION_REQUESTED")] string Status);

/// <summary>A page of the caller's generations, newest first.</summary>
/// <param name="Items">Generations with their status as last stored (fal is not asked per item).</param>
/// <param name="NextCursor">Pass as <c>cursor</c> for the next page; null on the last page.</param>
public sealed record GenerationPage(IReadOnlyList<GenerationHistoryItem> Items, string? NextCursor);

/// <summary>
/// One of the caller's generations as the history lists it: the Generation's fields (without its result) plus what a
/// gallery shows, the prompt, the options chosen and, once completed, the images.
/// </summary>
/// <param name="Id">fal's request id.</param>
/// <param name="Model">The fal model the job runs on.</param>
/// <param name="Status">IN_QUEUE, IN_PROGRESS, COMPLETED or FAILED, as last stored.</param>
/// <param name="QueuePosition">0-based place in fal's queue when last stored, while IN_QUEUE.</param>
/// <param name="CreatedAt">When the gateway accepted the job.</param>
/// <param name="CompletedAt">When the job ended.</param>
/// <param name="Error">The failure, as a problem, when FAILED.</param>
/// <param name="Links">Where to follow the job.</param>
/// <param name="Prompt">The prompt as submitted; null only for generations recorded before the gateway kept prompts.</param>
/// <param name="Options">The options the caller chose (only those it sent; fal's defaults apply to the rest).</param>
/// <param name="Images">When COMPLETED, the images: absent while pending or failed. Images copied to the gateway's image store show the gateway's links (as the result does).</param>
/// <param name="ImageCopy">As in the Generation: with an image store, once COMPLETED, <c>pending</c>, <c>stored</c> or <c>failed</c>; absent without one.</param>
/// <param name="User">The signed-in user who submitted the job (from the access token); absent when a client key submitted it.</param>
[ApiExample("""
    {
      "id": "764cabcf-b745-4b3e-ae38-1200304cf45b",
      "model": "microsoft/mai-image-2.5",
      "status": "COMPLETED",
      "queue_position": null,
      "created_at": "2026-11-24T10:00:00+00:00",
      "completed_at": "2026-11-24T10:00:09+00:00",
      "error": null,
      "links": {
        "self": "/v1/generations/764cabcf-b745-4b3e-ae38-1200304cf45b",
        "status": "/v1/generations/764cabcf-b745-4b3e-ae38-1200304cf45b/status",
        "result": "/v1/generations/764cabcf-b745-4b3e-ae38-1200304cf45b/result",
        "events": "/v1/generations/764cabcf-b745-4b3e-ae38-1200304cf45b/events",
        "cancel": "/v1/generations/764cabcf-b745-4b3e-ae38-1200304cf45b/cancel"
      },
      "prompt": "A lighthouse on a cliff at dusk, photorealistic",
      "options": { "num_images": 1, "aspect_ratio": "16:9" },
      "images": [
        { "url": "https://v3.fal.media/files/example/lighthouse.png", "data_uri": false, "content_type": "image/png", "width": 1024, "height": 576 }
      ]
    }
    """)]
public sealed record GenerationHistoryItem(
    string Id,
    string Model,
    [property: ApiValues(GenerationStatus.InQueue, GenerationStatus.InProgress, GenerationStatus.Completed, GenerationStatus.Failed)] string Status,
    int? QueuePosition,
    DateTimeOffset CreatedAt,
    DateTimeOffset? CompletedAt,
    GenerationError? Error,
    GenerationLinks Links,
    string? Prompt,
    GenerationChoices Options,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<HistoryImage>? Images,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ImageCopy = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? User = null);

/// <summary>The options a generation was submitted with; an option the caller did not send is absent.</summary>
/// <param name="NumImages">How many images were asked for.</param>
/// <param name="AspectRatio">The shape asked for.</param>
/// <param name="OutputFormat">The image format asked for.</param>
/// <param name="SyncMode">Whether images were asked for as data URIs.</param>
public sealed record GenerationChoices(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? NumImages,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    [property: ApiValues("auto", "21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16")]
    string? AspectRatio,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] [property: ApiValues("jpeg", "png", "webp")] string? OutputFormat,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? SyncMode)
{
    internal static GenerationChoices Of(FalImageInput input) => new(input.NumImages, input.AspectRatio, input.OutputFormat, input.SyncMode);
}

/// <summary>One image of a completed generation, as the history lists it.</summary>
/// <param name="Url">The image's URL as fal returned it; for an image fal returned as a data URI (sync_mode), the generation's result link, where the data URI is.</param>
/// <param name="DataUri">True when the image is a data URI inside the result (url is then the result link, not an image).</param>
/// <param name="ContentType">Its media type, e.g. image/png, when fal gave it.</param>
/// <param name="FileName">Its file name, when fal gave it.</param>
/// <param name="FileSize">Its size in bytes, when fal gave it.</param>
/// <param name="Width">Its width in pixels, when fal gave it.</param>
/// <param name="Height">Its height in pixels, when fal gave it.</param>
public sealed record HistoryImage(
    string Url,
    bool DataUri,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ContentType,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? FileName,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? FileSize,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Width,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Height);
