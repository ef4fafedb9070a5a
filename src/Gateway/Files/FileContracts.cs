namespace Gateway.Files;

/// <summary>An input image stored on fal's CDN.</summary>
/// <param name="Url">fal's URL of the file: put it in an edit's <c>image_urls</c>.</param>
/// <param name="ContentType">The type read from the file's bytes (png, jpeg, webp or gif).</param>
/// <param name="FileName">The name it was stored under.</param>
/// <param name="FileSize">Its size in bytes.</param>
public sealed record FileResponse(string Url, string ContentType, string FileName, long FileSize);
