using System.Text.RegularExpressions;

namespace Gateway.Images;

/// <summary>
/// Where copies of the results' images are kept: image <c>index</c> of generation <c>id</c>, written once as it streams in,
/// read (seekable, for range requests) by its owner, and deleted once the generation it belongs to has expired.
/// </summary>
internal interface IImageStore
{
    /// <summary>
    /// Writes an image read from <paramref name="content"/> to its end, replacing one already there; it is visible only once
    /// written whole. <paramref name="completedAt"/> is when its generation completed: the image expires with it.
    /// </summary>
    Task WriteAsync(string id, int index, Stream content, string contentType, DateTimeOffset completedAt, CancellationToken cancellationToken);

    /// <summary>The image, readable and seekable; null when there is none (never copied, or swept).</summary>
    Task<Stream?> OpenReadAsync(string id, int index, CancellationToken cancellationToken);

    /// <summary>Deletes the images of generations that completed at or before <paramref name="completedBefore"/>; how many.</summary>
    Task<int> SweepAsync(DateTimeOffset completedBefore, CancellationToken cancellationToken);
}

/// <summary>Names in a store: <c>{id}/{index}</c>, for ids that are safe as a path segment (fal's request ids are UUIDs).</summary>
internal static partial class ImageKeys
{
    public static bool IsSafe(string id) => SafeId().IsMatch(id);

    public static string Of(string id, int index) => IsSafe(id) && index >= 0
        ? $"{id}/{index.ToString(System.Globalization.CultureInfo.InvariantCulture)}"
        : throw new ImageCopyException($"The generation id '{id}' cannot name a stored image.", permanent: true);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")]
    private static partial Regex SafeId();
}

/// <summary>The store when none is configured (<c>Images:Store=None</c>): holds nothing.</summary>
internal sealed class NoImageStore : IImageStore
{
    public Task WriteAsync(string id, int index, Stream content, string contentType, DateTimeOffset completedAt, CancellationToken cancellationToken) =>
        throw new InvalidOperationException("No image store is configured.");

    public Task<Stream?> OpenReadAsync(string id, int index, CancellationToken cancellationToken) => Task.FromResult<Stream?>(null);

    public Task<int> SweepAsync(DateTimeOffset completedBefore, CancellationToken cancellationToken) => Task.FromResult(0);
}

/// <summary>Why a copy attempt failed; a permanent failure (wrong type or size, too large) is not retried.</summary>
internal sealed class ImageCopyException(string message, bool permanent, Exception? inner = null) : Exception(message, inner)
{
    public bool Permanent { get; } = permanent;
}
