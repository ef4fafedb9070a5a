using System.Buffers.Text;
using Gateway.Files;

namespace Gateway.Generations;

/// <summary>
/// What an entry of <c>image_urls</c> may be: an absolute http(s) URL, or a base64 data URI whose bytes are a PNG,
/// JPEG, WebP or GIF of the type it declares, under the size cap. Neither may hold whitespace or control
/// characters (a URL carries them percent-encoded), so nothing fal would choke on, or a header could be
/// smuggled with, is passed on.
/// </summary>
internal static class ImageUrlRules
{
    private static readonly string[] ImageTypes = ["image/png", "image/jpeg", "image/jpg", "image/webp", "image/gif"];

    /// <summary>Null when the entry is acceptable, else why not.</summary>
    public static string? Check(string? value, int maxDataBytes)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return "must be an http(s) URL or an image data URI, not empty.";
        }

        if (HasWhitespaceOrControl(value))
        {
            return "must not contain whitespace or control characters (percent-encode them in a URL).";
        }

        return value.StartsWith("data:", StringComparison.OrdinalIgnoreCase) ? CheckDataUri(value, maxDataBytes) : CheckHosted(value);
    }

    /// <summary>
    /// Vectorised over the printable ASCII that URLs and base64 are made of (a data URI runs to megabytes);
    /// the per-character look starts only at the first character outside it.
    /// </summary>
    private static bool HasWhitespaceOrControl(ReadOnlySpan<char> value)
    {
        var outside = value.IndexOfAnyExceptInRange('!', '~');
        if (outside < 0)
        {
            return false;
        }

        foreach (var c in value[outside..])
        {
            if (char.IsWhiteSpace(c) || char.IsControl(c))
            {
                return true;
            }
        }

        return false;
    }

    private static string? CheckHosted(string value)
    {
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || string.IsNullOrEmpty(uri.Host))
        {
            return "must be an absolute http(s) URL or an image data URI.";
        }

        return string.IsNullOrEmpty(uri.UserInfo) ? null : "must not carry credentials (user:password@).";
    }

    private static string? CheckDataUri(string value, int maxDataBytes)
    {
        var comma = value.IndexOf(',', StringComparison.Ordinal);
        var header = comma > 0 ? value[5..comma] : "";
        var mediaType = header.Split(';')[0].Trim().ToLowerInvariant();
        if (comma < 0 || !header.EndsWith(";base64", StringComparison.OrdinalIgnoreCase))
        {
            return "a data URI must be base64 encoded: data:image/png;base64,….";
        }

        if (!ImageTypes.Contains(mediaType))
        {
            return $"a data URI must hold an image (png, jpeg, webp or gif), not '{mediaType}'.";
        }

        var payload = value.AsSpan(comma + 1);
        if (payload.Length == 0 || !Base64.IsValid(payload, out var decodedLength))
        {
            return "the data URI's base64 payload is not valid base64.";
        }

        if (decodedLength > maxDataBytes)
        {
            return $"the data URI's image is {decodedLength} bytes; the limit is {maxDataBytes}.";
        }

        // The same look at the first bytes as POST /v1/files: only the head is decoded, never the whole image.
        Span<byte> head = stackalloc byte[ImageSniffer.HeaderLength];
        Convert.TryFromBase64Chars(payload[..Math.Min(payload.Length, ImageSniffer.HeaderLength / 3 * 4)], head, out var written);
        if (ImageSniffer.Detect(head[..written]) is not ({ } contentType, _))
        {
            return "the data URI's bytes are not a PNG, JPEG, WebP or GIF image.";
        }

        var declared = mediaType == "image/jpg" ? "image/jpeg" : mediaType;
        return declared == contentType ? null : $"the data URI declares {mediaType} but its bytes are {contentType}.";
    }
}
