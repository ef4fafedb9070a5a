using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Gateway.Generations;
using Gateway.Images;

namespace Gateway.Tests.Unit;

/// <summary>
/// The stored result's side of the image store: which images a result has and where their bytes are, the swap of their
/// URLs for the gateway's links (nothing else changes), and the checks every copied image passes.
/// </summary>
public sealed class ResultImagesTests
{
    private static readonly byte[] Png = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, .. RandomBytes(3000)];

    private static byte[] RandomBytes(int length)
    {
        var bytes = new byte[length];
        new Random(5).NextBytes(bytes);
        return bytes;
    }

    private static string Result(string secondUrl) =>
        "{\"images\":[{\"url\":\"https://v3.fal.media/files/a.png\",\"content_type\":\"image/png\",\"file_size\":1234,\"width\":8}," +
        $"{{\"url\":\"{secondUrl}\",\"content_type\":\"image/jpeg\"}}],\"description\":\"gw-image:0 is text\",\"seed\":7," +
        "\"extra\":{\"images\":[{\"url\":\"https://not.an.output/x\"}]}}";

    private static async Task<string> WriteAsync(StoredResult result, Func<int, string> imageUrl, Func<int, byte[]?>? blob = null)
    {
        using var output = new MemoryStream();
        await result.WriteToAsync(output, (i, _) => Task.FromResult(blob?.Invoke(i)), TestContext.Current.CancellationToken, imageUrl);
        return Encoding.UTF8.GetString(output.ToArray());
    }

    [Fact]
    public void Images_OfAnInlineResult_AreItsUrlsWithTheirDeclaredTypesAndSizes()
    {
        var stored = StoredResult.Encode(Encoding.UTF8.GetBytes(Result("https://v3.fal.media/files/b.jpeg")), inlineMaxBytes: 1 << 20);

        Assert.Equal(
            [new ResultImage(0, "https://v3.fal.media/files/a.png", null, "image/png", 1234), new ResultImage(1, "https://v3.fal.media/files/b.jpeg", null, "image/jpeg", null)],
            stored.Images());
    }

    [Fact]
    public void Images_OfADataUriKeptApart_NameTheBlobAndThePrefix()
    {
        var stored = StoredResult.Encode(Encoding.UTF8.GetBytes(Result("data:image/png;base64," + Convert.ToBase64String(Png))), inlineMaxBytes: 100);

        var second = stored.Images()[1];

        Assert.Equal(0, second.Blob);
        Assert.Equal("data:image/png;base64,", second.Url);
        Assert.Equal(Png, stored.Blobs[0]);
    }

    [Theory]
    [InlineData(1 << 20)]
    [InlineData(100)]
    public async Task WithImagesInStore_LinksEveryOutputImage_AndKeepsEverythingElse(int inlineMaxBytes)
    {
        var json = Result("data:image/png;base64," + Convert.ToBase64String(Png));
        var stored = StoredResult.Encode(Encoding.UTF8.GetBytes(json), inlineMaxBytes);

        var linked = stored.WithImagesInStore(out var freed);
        var written = JsonNode.Parse(await WriteAsync(linked with { Blobs = [] }, i => $"https://gw.example/v1/generations/g/images/{i}?ticket=t&x=1"))!;

        var expected = JsonNode.Parse(json)!;
        expected["images"]![0]!["url"] = "https://gw.example/v1/generations/g/images/0?ticket=t&x=1";
        expected["images"]![1]!["url"] = "https://gw.example/v1/generations/g/images/1?ticket=t&x=1";
        Assert.True(JsonNode.DeepEquals(expected, written), written.ToJsonString());
        Assert.Equal(inlineMaxBytes == 100 ? [0] : [], freed);
        Assert.True(linked.HasBlobs);
    }

    [Fact]
    public async Task WriteToAsync_ImagePlaceholderWithoutALink_Throws()
    {
        var linked = StoredResult.Encode(Encoding.UTF8.GetBytes(Result("https://x/b.jpeg")), 1 << 20).WithImagesInStore(out _);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            using var output = new MemoryStream();
            await linked.WriteToAsync(output, (_, _) => Task.FromResult<byte[]?>(null), TestContext.Current.CancellationToken);
        });

        Assert.Contains("no link", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckedImageStream_PassesAnImageOfTheDeclaredTypeAndSize_AndHashesIt()
    {
        await using var checkedImage = new CheckedImageStream(new ImageSource(new MemoryStream(Png), "image/png", Png.Length), 0, maxBytes: 1 << 20);
        await checkedImage.ReadHeadAsync(TestContext.Current.CancellationToken);
        using var copy = new MemoryStream();
        await checkedImage.CopyToAsync(copy, TestContext.Current.CancellationToken);

        Assert.Equal("image/png", checkedImage.ContentType);
        Assert.True(checkedImage.Complete);
        Assert.Equal(Png, copy.ToArray());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Png)), checkedImage.Sha256);
    }

    public static TheoryData<string?, long?, long, string> Refusals => new()
    {
        { "image/jpeg", null, 1 << 20, "is image/png, but the result says image/jpeg" },
        { "image/png", 10, 1 << 20, "larger than the 10 bytes the result says" },
        { "image/png", Png.Length + 1L, 1 << 20, $"is {Png.Length} bytes, but the result says {Png.Length + 1}" },
        { null, null, 1024, "larger than Images__MaxImageBytes" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task CheckedImageStream_WrongTypeOrSizeOrTooLarge_FailsPermanently(string? declaredType, long? declaredLength, long maxBytes, string message)
    {
        await using var checkedImage = new CheckedImageStream(new ImageSource(new MemoryStream(Png), declaredType, declaredLength), 3, maxBytes);

        var error = await Assert.ThrowsAsync<ImageCopyException>(async () =>
        {
            await checkedImage.ReadHeadAsync(TestContext.Current.CancellationToken);
            await checkedImage.CopyToAsync(Stream.Null, TestContext.Current.CancellationToken);
        });

        Assert.True(error.Permanent);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.False(checkedImage.Complete);
    }

    [Fact]
    public async Task CheckedImageStream_BytesThatAreNoImage_FailPermanently()
    {
        await using var checkedImage = new CheckedImageStream(new ImageSource(new MemoryStream("<html><script>"u8.ToArray()), null, null), 0, 1 << 20);

        var error = await Assert.ThrowsAsync<ImageCopyException>(() => checkedImage.ReadHeadAsync(TestContext.Current.CancellationToken));

        Assert.True(error.Permanent);
        Assert.Equal("Image 0 is not a PNG, JPEG, WebP or GIF.", error.Message);
    }
}
