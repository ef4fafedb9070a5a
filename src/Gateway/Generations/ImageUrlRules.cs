using System.Buffers.Text;

namespace Gateway.Generations;

/// <summary>What an entry of <c>image_urls</c> may be: an absolute http(s) URL, or an image data URI under the size cap.</summary>
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

        if (value.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
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

            return decodedLength > maxDataBytes
                ? $"the data URI's image is {decodedLength} bytes; the limit is {maxDataBytes}."
                : null;
        }

        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || string.IsNullOrEmpty(uri.Host))
        {
            return "must be an absolute http(s) URL or an image data URI.";
        }

        return string.IsNullOrEmpty(uri.UserInfo) ? null : "must not carry credentials (user:password@).";
    }
}
