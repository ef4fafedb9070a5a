using System.Runtime.InteropServices;
using System.Text.Json;

namespace Gateway.Generations;

/// <summary>What the history keeps of a result's images: fal's URLs and metadata, never the bytes of a data URI.</summary>
internal static class ResultImages
{
    /// <summary>
    /// The images of a result (fal's JSON, or a stored skeleton whose data URIs are blob placeholders); an image given
    /// as a data URI keeps no URL. Null when the result is not the model's JSON output.
    /// </summary>
    public static IReadOnlyList<RecordedImage>? Summarize(ReadOnlyMemory<byte> json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("images", out var images) || images.ValueKind != JsonValueKind.Array)
            {
                return null;
            }

            var found = new List<RecordedImage>();
            foreach (var image in images.EnumerateArray())
            {
                if (image.ValueKind != JsonValueKind.Object || !image.TryGetProperty("url", out var url) || url.ValueKind != JsonValueKind.String)
                {
                    continue;
                }

                found.Add(new RecordedImage(
                    IsInline(url) ? null : url.GetString(),
                    Text(image, "content_type"), Text(image, "file_name"), Long(image, "file_size"), Int(image, "width"), Int(image, "height")));
            }

            return found;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>A data URI, or the placeholder a stored skeleton holds in its place; read from the raw bytes, not materialised.</summary>
    private static bool IsInline(JsonElement url)
    {
        var raw = JsonMarshal.GetRawUtf8Value(url);
        if (raw.Length > 0 && raw[0] == (byte)'"')
        {
            raw = raw[1..];
        }

        return raw.StartsWith("data:"u8) || raw.StartsWith("gw-blob:"u8);
    }

    private static string? Text(JsonElement image, string name) =>
        image.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static long? Long(JsonElement image, string name) =>
        image.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var number) ? number : null;

    private static int? Int(JsonElement image, string name) =>
        image.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var number) ? number : null;
}
