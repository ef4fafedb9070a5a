using System.Buffers;
using System.Buffers.Text;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Gateway.Generations;

/// <summary>
/// A terminal result as kept in the store. Small results are fal's JSON as it came. Large ones (sync_mode
/// data URIs, several MB each) keep their images as separate binary values (a quarter smaller than base64)
/// and a small JSON skeleton that names them; they are re-expanded while streaming to the client, one
/// image at a time, so no reader holds the whole document. Once the images are in the gateway's image store,
/// the skeleton's image URLs are placeholders too (<c>gw-image:N</c>), written out as the gateway's links.
/// </summary>
/// <param name="HasBlobs">The document is a skeleton with placeholders (<c>gw-blob:…</c>, <c>gw-image:…</c>), not fal's JSON as it came.</param>
/// <param name="Document">fal's JSON, or the skeleton.</param>
/// <param name="Blobs">The data-URI images kept apart, when held in memory (a store may load them by index instead).</param>
internal sealed record StoredResult(bool HasBlobs, byte[] Document, IReadOnlyList<byte[]> Blobs)
{
    private static ReadOnlySpan<byte> Marker => "\"gw-"u8;
    private static ReadOnlySpan<byte> BlobKind => "blob:"u8;
    private static ReadOnlySpan<byte> ImageKind => "image:"u8;
    private static readonly JavaScriptEncoder Escaping = JavaScriptEncoder.UnsafeRelaxedJsonEscaping;
    private const int MinBlobBytes = 1024;

    public static StoredResult Encode(byte[] json, int inlineMaxBytes)
    {
        if (json.Length <= inlineMaxBytes)
        {
            using var _ = JsonDocument.Parse(json); // refuse to store what is not JSON
            return new StoredResult(false, json, []);
        }

        var blobs = new List<byte[]>();
        var buffer = new ArrayBufferWriter<byte>(Math.Min(json.Length, 64 * 1024));
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = Escaping }))
        {
            var reader = new Utf8JsonReader(json);
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject: writer.WriteStartObject(); break;
                    case JsonTokenType.EndObject: writer.WriteEndObject(); break;
                    case JsonTokenType.StartArray: writer.WriteStartArray(); break;
                    case JsonTokenType.EndArray: writer.WriteEndArray(); break;
                    case JsonTokenType.PropertyName: writer.WritePropertyName(reader.GetString()!); break;
                    case JsonTokenType.Number: writer.WriteRawValue(reader.ValueSpan, skipInputValidation: true); break;
                    case JsonTokenType.True: writer.WriteBooleanValue(true); break;
                    case JsonTokenType.False: writer.WriteBooleanValue(false); break;
                    case JsonTokenType.Null: writer.WriteNullValue(); break;
                    case JsonTokenType.String:
                        WriteString(ref reader, writer, blobs);
                        break;
                }
            }
        }

        return new StoredResult(true, buffer.WrittenSpan.ToArray(), blobs);
    }

    private static void WriteString(ref Utf8JsonReader reader, Utf8JsonWriter writer, List<byte[]> blobs)
    {
        var raw = reader.ValueIsEscaped ? Encoding.UTF8.GetBytes(reader.GetString()!) : reader.ValueSpan.ToArray();
        var comma = raw.AsSpan().IndexOf(";base64,"u8);
        // Only a prefix without quotes or backslashes becomes a placeholder: written escaped, they would end it early.
        if (raw.Length >= MinBlobBytes && raw.AsSpan().StartsWith("data:"u8) && comma > 0
            && raw.AsSpan(0, comma).IndexOfAny((byte)'"', (byte)'\\') < 0)
        {
            var prefix = raw.AsSpan(0, comma + ";base64,".Length);
            var payload = raw.AsSpan(prefix.Length);
            var bytes = new byte[Base64.GetMaxDecodedFromUtf8Length(payload.Length)];
            if (Base64.DecodeFromUtf8(payload, bytes, out _, out var written) == OperationStatus.Done)
            {
                blobs.Add(bytes.AsSpan(0, written).ToArray());
                writer.WriteStringValue($"gw-blob:{blobs.Count - 1};{Encoding.UTF8.GetString(prefix)}");
                return;
            }
        }

        if (raw.AsSpan().StartsWith("gw-"u8))
        {
            // A literal value that looks like a placeholder is written escaped, so it never matches the marker.
            writer.WriteRawValue("\"\\u0067" + JsonEncodedText.Encode(Encoding.UTF8.GetString(raw.AsSpan(1)), Escaping) + "\"");
            return;
        }

        writer.WriteStringValue(raw);
    }

    /// <summary>
    /// Writes the result as fal's JSON, expanding data-URI placeholders from <paramref name="loadBlob"/> and the images
    /// in the gateway's store as the links <paramref name="imageUrl"/> gives.
    /// </summary>
    public async Task WriteToAsync(
        Stream output, Func<int, CancellationToken, Task<byte[]?>> loadBlob, CancellationToken cancellationToken, Func<int, string>? imageUrl = null)
    {
        if (!HasBlobs)
        {
            await output.WriteAsync(Document, cancellationToken);
            return;
        }

        var position = 0;
        while (true)
        {
            var found = Document.AsSpan(position).IndexOf(Marker);
            if (found < 0)
            {
                await output.WriteAsync(Document.AsMemory(position), cancellationToken);
                return;
            }

            var start = position + found;
            var end = Array.IndexOf(Document, (byte)'"', start + 1);
            if (end + 1 < Document.Length && Document[end + 1] == (byte)':')
            {
                // A property name that reads like a placeholder: only values are placeholders.
                await output.WriteAsync(Document.AsMemory(position, end + 1 - position), cancellationToken);
                position = end + 1;
                continue;
            }

            await output.WriteAsync(Document.AsMemory(position, start - position + 1), cancellationToken); // through the opening quote
            var kind = Document.AsSpan(start + Marker.Length, end - start - Marker.Length);
            if (kind.StartsWith(ImageKind))
            {
                var image = int.Parse(kind[ImageKind.Length..], System.Globalization.CultureInfo.InvariantCulture);
                var url = imageUrl?.Invoke(image) ?? throw new InvalidOperationException($"Image {image} is in the image store, but no link to it was given.");
                await output.WriteAsync(Encoding.UTF8.GetBytes(JsonEncodedText.Encode(url, Escaping).Value), cancellationToken);
                position = end;
                continue;
            }

            if (!kind.StartsWith(BlobKind))
            {
                // Not a placeholder the gateway writes (a literal is stored escaped, so this is only an old document's text).
                await output.WriteAsync(Document.AsMemory(start + 1, end - start - 1), cancellationToken);
                position = end;
                continue;
            }

            var placeholder = Encoding.UTF8.GetString(Document, start + Marker.Length + BlobKind.Length, end - start - Marker.Length - BlobKind.Length);
            var separator = placeholder.IndexOf(';', StringComparison.Ordinal);
            var index = int.Parse(placeholder.AsSpan(0, separator), System.Globalization.CultureInfo.InvariantCulture);
            await output.WriteAsync(Encoding.UTF8.GetBytes(placeholder[(separator + 1)..]), cancellationToken);
            var blob = (Blobs.Count > index ? Blobs[index] : await loadBlob(index, cancellationToken))
                ?? throw new InvalidOperationException($"Image {index} of a stored result is missing.");
            await WriteBase64Async(output, blob, cancellationToken);
            position = end; // the closing quote is written with the next chunk
        }
    }

    /// <summary>The result's images (<c>images[i]</c>) as fal described them, and where each one's bytes are.</summary>
    public IReadOnlyList<ResultImage> Images()
    {
        using var document = JsonDocument.Parse(Document);
        if (document.RootElement.ValueKind != JsonValueKind.Object
            || !document.RootElement.TryGetProperty("images", out var images) || images.ValueKind != JsonValueKind.Array)
        {
            return [];
        }

        var found = new List<ResultImage>();
        foreach (var image in images.EnumerateArray())
        {
            string? url = null;
            int? blob = null;
            if (image.ValueKind == JsonValueKind.Object && image.TryGetProperty("url", out var value) && value.ValueKind == JsonValueKind.String)
            {
                url = value.GetString();
                var raw = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(value);
                if (HasBlobs && raw.StartsWith("\"gw-blob:"u8))
                {
                    // A placeholder (a literal that reads like one is stored escaped): its blob, and the data URI's prefix.
                    var separator = url!.IndexOf(';', StringComparison.Ordinal);
                    blob = int.Parse(url.AsSpan("gw-blob:".Length, separator - "gw-blob:".Length), System.Globalization.CultureInfo.InvariantCulture);
                    url = url[(separator + 1)..];
                }
            }

            found.Add(new ResultImage(found.Count, url, blob,
                image.ValueKind == JsonValueKind.Object && image.TryGetProperty("content_type", out var type) && type.ValueKind == JsonValueKind.String ? type.GetString() : null,
                image.ValueKind == JsonValueKind.Object && image.TryGetProperty("file_size", out var size) && size.TryGetInt64(out var bytes) ? bytes : null));
        }

        return found;
    }

    /// <summary>
    /// The result with each image's <c>url</c> replaced by a placeholder for the gateway's link (<c>gw-image:N</c>); every
    /// other token is kept as it was. <paramref name="freedBlobs"/> are the blobs those URLs held, no longer needed.
    /// </summary>
    public StoredResult WithImagesInStore(out IReadOnlyList<int> freedBlobs)
    {
        var freed = new List<int>();
        var buffer = new ArrayBufferWriter<byte>(Document.Length + 64);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = Escaping }))
        {
            var reader = new Utf8JsonReader(Document);
            var inImages = false;
            var image = -1;
            var isUrl = false;
            while (reader.Read())
            {
                var depth = reader.CurrentDepth;
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                        writer.WriteStartObject();
                        if (inImages && depth == 2)
                        {
                            image++;
                        }

                        break;
                    case JsonTokenType.EndObject: writer.WriteEndObject(); break;
                    case JsonTokenType.StartArray: writer.WriteStartArray(); break;
                    case JsonTokenType.EndArray:
                        writer.WriteEndArray();
                        inImages &= depth != 1;
                        break;
                    case JsonTokenType.PropertyName:
                        var name = reader.GetString()!;
                        writer.WritePropertyName(name);
                        if (depth == 1)
                        {
                            reader.Read(); // the value: only the top-level "images" array is looked into
                            inImages = name == "images" && reader.TokenType == JsonTokenType.StartArray;
                            if (inImages)
                            {
                                writer.WriteStartArray();
                            }
                            else
                            {
                                CopyValue(ref reader, writer);
                            }
                        }

                        isUrl = inImages && depth == 3 && name == "url";
                        break;
                    case JsonTokenType.String when isUrl:
                        if (HasBlobs && reader.ValueSpan.StartsWith("gw-blob:"u8))
                        {
                            var placeholder = reader.ValueSpan["gw-blob:".Length..];
                            freed.Add(int.Parse(placeholder[..placeholder.IndexOf((byte)';')], System.Globalization.CultureInfo.InvariantCulture));
                        }

                        writer.WriteRawValue($"\"gw-image:{image}\"", skipInputValidation: true);
                        isUrl = false;
                        break;
                    default:
                        CopyValue(ref reader, writer);
                        break;
                }

                if (reader.TokenType != JsonTokenType.PropertyName)
                {
                    isUrl = false;
                }
            }
        }

        freedBlobs = freed;
        return new StoredResult(true, buffer.WrittenSpan.ToArray(), Blobs);
    }

    /// <summary>Copies a scalar token as it is stored; a literal of fal's JSON that reads like a placeholder is escaped on the way.</summary>
    private void CopyValue(ref Utf8JsonReader reader, Utf8JsonWriter writer)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.String:
                var raw = reader.ValueSpan;
                var quoted = new byte[raw.Length + 7];
                var length = 0;
                quoted[length++] = (byte)'"';
                if (!HasBlobs && raw.StartsWith("gw-"u8))
                {
                    "\\u0067"u8.CopyTo(quoted.AsSpan(length));
                    length += 6;
                    raw = raw[1..];
                }

                raw.CopyTo(quoted.AsSpan(length));
                length += raw.Length;
                quoted[length++] = (byte)'"';
                writer.WriteRawValue(quoted.AsSpan(0, length), skipInputValidation: true);
                break;
            case JsonTokenType.Number: writer.WriteRawValue(reader.ValueSpan, skipInputValidation: true); break;
            case JsonTokenType.True: writer.WriteBooleanValue(true); break;
            case JsonTokenType.False: writer.WriteBooleanValue(false); break;
            case JsonTokenType.Null: writer.WriteNullValue(); break;
            case JsonTokenType.StartObject: writer.WriteStartObject(); break;
            case JsonTokenType.StartArray: writer.WriteStartArray(); break;
            case JsonTokenType.EndObject: writer.WriteEndObject(); break;
            case JsonTokenType.EndArray: writer.WriteEndArray(); break;
        }
    }

    private static async Task WriteBase64Async(Stream output, byte[] bytes, CancellationToken cancellationToken)
    {
        const int chunk = 48 * 1024; // a multiple of 3: no padding until the last chunk
        var encoded = ArrayPool<byte>.Shared.Rent(Base64.GetMaxEncodedToUtf8Length(chunk));
        try
        {
            for (var offset = 0; offset < bytes.Length; offset += chunk)
            {
                var length = Math.Min(chunk, bytes.Length - offset);
                Base64.EncodeToUtf8(bytes.AsSpan(offset, length), encoded, out _, out var written);
                await output.WriteAsync(encoded.AsMemory(0, written), cancellationToken);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(encoded);
        }
    }
}

/// <summary>One image of a result: fal's description of it, and where its bytes are.</summary>
/// <param name="Index">Its place in <c>images</c>.</param>
/// <param name="Url">fal's URL (http(s), or a small <c>data:</c> URI kept inline); for a blob, the data URI's prefix (<c>data:image/png;base64,</c>).</param>
/// <param name="Blob">The blob holding its bytes, for a large data URI kept apart.</param>
/// <param name="ContentType">The type the result declares.</param>
/// <param name="FileSize">The size the result declares.</param>
internal sealed record ResultImage(int Index, string? Url, int? Blob, string? ContentType, long? FileSize);
