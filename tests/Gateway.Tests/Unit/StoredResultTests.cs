using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gateway.Generations;

namespace Gateway.Tests.Unit;

/// <summary>
/// A stored result: fal's JSON as it came when small; over InlineResultMaxBytes its data-URI images are kept as
/// separate blobs and put back while writing, so what the client reads is fal's JSON either way.
/// </summary>
public sealed class StoredResultTests
{
    private static readonly byte[] PngBytes = Bytes(3000, seed: 1);
    private static readonly byte[] JpegBytes = Bytes(2000, seed: 2);

    private static byte[] Bytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static string TwoImageResult() =>
        "{\"images\":[" +
        $"{{\"url\":\"data:image/png;base64,{Convert.ToBase64String(PngBytes)}\",\"content_type\":\"image/png\",\"width\":1024,\"height\":768}}," +
        $"{{\"url\":\"data:image/jpeg;base64,{Convert.ToBase64String(JpegBytes)}\",\"content_type\":\"image/jpeg\",\"file_size\":2000}}" +
        "],\"description\":\"A lighthouse on a cliff at dusk\",\"seed\":-1.5e3,\"nsfw\":[false,true],\"timings\":null}";

    private static async Task<byte[]> WriteAsync(StoredResult result, Func<int, CancellationToken, Task<byte[]?>>? loadBlob = null)
    {
        using var output = new MemoryStream();
        await result.WriteToAsync(output, loadBlob ?? ((i, _) => throw new InvalidOperationException($"blob {i} should not be loaded")),
            TestContext.Current.CancellationToken);
        return output.ToArray();
    }

    [Fact]
    public async Task Encode_ResultNoLargerThanInlineMax_IsKeptAsItCame()
    {
        var json = Encoding.UTF8.GetBytes(TwoImageResult());

        var stored = StoredResult.Encode(json, inlineMaxBytes: json.Length);

        Assert.False(stored.HasBlobs);
        Assert.Same(json, stored.Document);
        Assert.Empty(stored.Blobs);
        Assert.Equal(json, await WriteAsync(stored));
    }

    [Fact]
    public async Task Encode_ResultOneByteOverInlineMax_KeepsEachDataUriImageAsASeparateBlob()
    {
        var json = Encoding.UTF8.GetBytes(TwoImageResult());

        var stored = StoredResult.Encode(json, inlineMaxBytes: json.Length - 1);

        Assert.True(stored.HasBlobs);
        Assert.Equal(2, stored.Blobs.Count);
        Assert.Equal(PngBytes, stored.Blobs[0]);
        Assert.Equal(JpegBytes, stored.Blobs[1]);
        Assert.Equal(
            "{\"images\":[{\"url\":\"gw-blob:0;data:image/png;base64,\",\"content_type\":\"image/png\",\"width\":1024,\"height\":768}," +
            "{\"url\":\"gw-blob:1;data:image/jpeg;base64,\",\"content_type\":\"image/jpeg\",\"file_size\":2000}]," +
            "\"description\":\"A lighthouse on a cliff at dusk\",\"seed\":-1.5e3,\"nsfw\":[false,true],\"timings\":null}",
            Encoding.UTF8.GetString(stored.Document));
    }

    [Fact]
    public async Task WriteToAsync_ResultWithBlobs_GivesBackFalsJsonByteForByte()
    {
        var json = Encoding.UTF8.GetBytes(TwoImageResult());

        var stored = StoredResult.Encode(json, inlineMaxBytes: 100);

        Assert.Equal(Encoding.UTF8.GetString(json), Encoding.UTF8.GetString(await WriteAsync(stored)));
    }

    [Fact]
    public async Task WriteToAsync_BlobsKeptApart_AreLoadedByIndex()
    {
        var stored = StoredResult.Encode(Encoding.UTF8.GetBytes(TwoImageResult()), inlineMaxBytes: 100);
        var withoutBlobs = stored with { Blobs = [] };
        var asked = new List<int>();

        var written = await WriteAsync(withoutBlobs, (i, _) =>
        {
            asked.Add(i);
            return Task.FromResult<byte[]?>(stored.Blobs[i]);
        });

        Assert.Equal([0, 1], asked);
        Assert.Equal(TwoImageResult(), Encoding.UTF8.GetString(written));
    }

    [Fact]
    public async Task WriteToAsync_MissingBlob_Throws()
    {
        var stored = StoredResult.Encode(Encoding.UTF8.GetBytes(TwoImageResult()), inlineMaxBytes: 100) with { Blobs = [] };

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => WriteAsync(stored, (_, _) => Task.FromResult<byte[]?>(null)));

        Assert.Equal("Image 0 of a stored result is missing.", error.Message);
    }

    [Fact]
    public async Task Encode_LargeImage_RoundTripsAcrossBase64Chunks()
    {
        var image = Bytes(48 * 1024 * 3 + 2, seed: 3); // several 48 KiB chunks and a padded tail
        var json = $"{{\"images\":[{{\"url\":\"data:image/webp;base64,{Convert.ToBase64String(image)}\"}}]}}";

        var stored = StoredResult.Encode(Encoding.UTF8.GetBytes(json), inlineMaxBytes: 1024);

        Assert.Equal(image, Assert.Single(stored.Blobs));
        Assert.Equal(json, Encoding.UTF8.GetString(await WriteAsync(stored)));
    }

    [Fact]
    public async Task Encode_OverInlineMax_LeavesShortDataUrisUrlsAndNonBase64DataUrisInline()
    {
        var shortUri = "data:image/png;base64," + Convert.ToBase64String(Bytes(100, seed: 4));
        var notBase64 = "data:image/png;base64," + new string('!', 2000);
        var plainData = "data:text/plain," + new string('a', 2000);
        var json = $"{{\"images\":[{{\"url\":\"{shortUri}\"}},{{\"url\":\"https://v3.fal.media/files/x.png\"}},{{\"url\":\"{notBase64}\"}},{{\"url\":\"{plainData}\"}}]}}";

        var stored = StoredResult.Encode(Encoding.UTF8.GetBytes(json), inlineMaxBytes: 10);

        Assert.True(stored.HasBlobs);
        Assert.Empty(stored.Blobs);
        Assert.Equal(json, Encoding.UTF8.GetString(stored.Document));
        Assert.Equal(json, Encoding.UTF8.GetString(await WriteAsync(stored)));
    }

    [Fact]
    public async Task Encode_DataUriOf1024Characters_BecomesABlob_AndAShorterOneStaysInline()
    {
        const string prefix = "data:image/png;x;base64,"; // 24 characters
        var blob = prefix + Convert.ToBase64String(new byte[750]); // 24 + 1000 = 1024
        var inline = prefix + Convert.ToBase64String(new byte[747]); // 24 + 996 = 1020
        Assert.Equal((1024, 1020), (blob.Length, inline.Length));

        var stored = StoredResult.Encode(Encoding.UTF8.GetBytes($"[\"{blob}\",\"{inline}\"]"), inlineMaxBytes: 10);

        Assert.Equal(new byte[750], Assert.Single(stored.Blobs));
        Assert.Equal($"[\"gw-blob:0;{prefix}\",\"{inline}\"]", Encoding.UTF8.GetString(stored.Document));
        Assert.Equal($"[\"{blob}\",\"{inline}\"]", Encoding.UTF8.GetString(await WriteAsync(stored)));
    }

    [Fact]
    public async Task Encode_LiteralStringThatLooksLikeAPlaceholder_IsNotExpanded()
    {
        var json = $"{{\"description\":\"gw-blob:0;data:image/png;base64,\",\"images\":[{{\"url\":\"data:image/png;base64,{Convert.ToBase64String(PngBytes)}\"}}]}}";

        var stored = StoredResult.Encode(Encoding.UTF8.GetBytes(json), inlineMaxBytes: 10);
        var written = await WriteAsync(stored);

        Assert.Single(stored.Blobs);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(json), JsonNode.Parse(written)));
        Assert.Equal("gw-blob:0;data:image/png;base64,", JsonNode.Parse(written)!["description"]!.GetValue<string>());
    }

    [Fact]
    public async Task Encode_EscapedStrings_ComeBackWithTheSameValues()
    {
        var escapedUri = "data:image\\/png;base64," + Convert.ToBase64String(PngBytes).Replace("/", "\\/", StringComparison.Ordinal);
        var json = "{\"description\":\"a \\\"quoted\\\" caf\\u00e9\\nline \\u2028 <b>&</b> \\ud83d\\ude00\"," +
                   $"\"images\":[{{\"url\":\"{escapedUri}\"}}]," + "\"n\":12345678901234567890}";

        var stored = StoredResult.Encode(Encoding.UTF8.GetBytes(json), inlineMaxBytes: 10);
        var written = await WriteAsync(stored);

        Assert.Equal(PngBytes, Assert.Single(stored.Blobs));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(json), JsonNode.Parse(written)), Encoding.UTF8.GetString(written));
        Assert.Equal("12345678901234567890", JsonNode.Parse(written)!["n"]!.ToJsonString());
    }

    [Fact]
    public async Task Encode_WhitespaceBetweenTokens_IsDroppedButValuesAreKept()
    {
        var json = "{\n  \"images\": [ { \"url\": \"data:image/png;base64," + Convert.ToBase64String(PngBytes) + "\" } ],\n  \"description\": \"x\"\n}";

        var stored = StoredResult.Encode(Encoding.UTF8.GetBytes(json), inlineMaxBytes: 10);

        Assert.Equal("{\"images\":[{\"url\":\"gw-blob:0;data:image/png;base64,\"}],\"description\":\"x\"}", Encoding.UTF8.GetString(stored.Document));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(json), JsonNode.Parse(await WriteAsync(stored))));
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(1)]
    public void Encode_NotJson_IsRefused_InlineOrNot(int inlineMaxBytes)
    {
        var notJson = Encoding.UTF8.GetBytes("{\"images\": [ this is not json");

        Assert.ThrowsAny<JsonException>(() => StoredResult.Encode(notJson, inlineMaxBytes));
    }

    [Fact]
    public async Task Encode_DataUriWhoseParametersHoldAQuote_ComesBackAsTheSameJson()
    {
        // A data URI's parameters may be quoted strings (RFC 2045): data:image/png;name="a.png";base64,…
        var uri = "data:image/png;name=\\\"a.png\\\";base64," + Convert.ToBase64String(PngBytes);
        var json = $"{{\"images\":[{{\"url\":\"{uri}\"}}],\"description\":\"x\"}}";

        var stored = StoredResult.Encode(Encoding.UTF8.GetBytes(json), inlineMaxBytes: 10);
        var written = Encoding.UTF8.GetString(await WriteAsync(stored));

        Assert.Equal(json, written);
    }

    [Fact]
    public async Task Encode_PropertyNamedLikeAPlaceholder_ComesBackAsTheSameJson()
    {
        var json = $"{{\"gw-blob:0;x\":1,\"images\":[{{\"url\":\"data:image/png;base64,{Convert.ToBase64String(PngBytes)}\"}}]}}";

        var stored = StoredResult.Encode(Encoding.UTF8.GetBytes(json), inlineMaxBytes: 10);
        var written = Encoding.UTF8.GetString(await WriteAsync(stored));

        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(json), JsonNode.Parse(written)), written[..Math.Min(200, written.Length)]);
    }
}
