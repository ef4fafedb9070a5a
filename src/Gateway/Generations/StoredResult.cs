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
/// image at a time, so no reader holds the whole document.
/// </summary>
internal sealed record StoredResult(bool HasBlobs, byte[] Document, IReadOnlyList<byte[]> Blobs)
{
    private static ReadOnlySpan<byte> Marker => "\"gw-blob:"u8;
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
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
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

        if (raw.AsSpan().StartsWith("gw-blob:"u8))
        {
            // A literal value that looks like a placeholder is written escaped, so it never matches the marker.
            writer.WriteRawValue("\"\\u0067" + JsonEncodedText.Encode(Encoding.UTF8.GetString(raw.AsSpan(1)), JavaScriptEncoder.UnsafeRelaxedJsonEscaping) + "\"");
            return;
        }

        writer.WriteStringValue(raw);
    }

    /// <summary>Writes the result as fal's JSON, expanding image placeholders from <paramref name="loadBlob"/>.</summary>
    public async Task WriteToAsync(Stream output, Func<int, CancellationToken, Task<byte[]?>> loadBlob, CancellationToken cancellationToken)
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
            var placeholder = Encoding.UTF8.GetString(Document, start + Marker.Length, end - start - Marker.Length);
            var separator = placeholder.IndexOf(';', StringComparison.Ordinal);
            var index = int.Parse(placeholder.AsSpan(0, separator), System.Globalization.CultureInfo.InvariantCulture);
            await output.WriteAsync(Encoding.UTF8.GetBytes(placeholder[(separator + 1)..]), cancellationToken);
            var blob = (Blobs.Count > index ? Blobs[index] : await loadBlob(index, cancellationToken))
                ?? throw new InvalidOperationException($"Image {index} of a stored result is missing.");
            await WriteBase64Async(output, blob, cancellationToken);
            position = end; // the closing quote is written with the next chunk
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
