using System.Net;
using SkiaSharp;

namespace FalEmulator.Tests;

public sealed class ImageTests
{
    private static readonly string[] Unreachable = ["http://127.0.0.1:9/nowhere.png"];

    [Theory]
    [InlineData("png", "1:1", 128, 128, SKEncodedImageFormat.Png)]
    [InlineData("jpeg", "16:9", 128, 72, SKEncodedImageFormat.Jpeg)]
    [InlineData("webp", "9:16", 72, 128, SKEncodedImageFormat.Webp)]
    [InlineData("png", "21:9", 128, 55, SKEncodedImageFormat.Png)]
    [InlineData("jpeg", "4:5", 102, 128, SKEncodedImageFormat.Jpeg)]
    [InlineData("webp", "auto", 128, 128, SKEncodedImageFormat.Webp)]
    public async Task Result_Images_AreRealFilesInTheRequestedFormatAndRatio(string format, string ratio, int width, int height, SKEncodedImageFormat skFormat)
    {
        await using var emulator = await Emulator.Start();

        var result = await emulator.CompletedResult(new { prompt = "a city at dusk", output_format = format, aspect_ratio = ratio, num_images = 2 });

        var images = result.GetProperty("images").EnumerateArray().ToList();
        Assert.Equal(2, images.Count);
        foreach (var image in images)
        {
            var url = image.GetProperty("url").GetString()!;
            Assert.StartsWith($"{emulator.Host.QueueBaseUrl}/files/", url, StringComparison.Ordinal);
            using var file = await emulator.Anonymous.GetAsync(url, Emulator.Ct);
            var bytes = await file.Content.ReadAsByteArrayAsync(Emulator.Ct);

            Assert.Equal(HttpStatusCode.OK, file.StatusCode);
            Assert.Equal($"image/{format}", file.Content.Headers.ContentType?.MediaType);
            Assert.Equal($"image/{format}", image.GetProperty("content_type").GetString());
            Assert.EndsWith($".{format}", image.GetProperty("file_name").GetString(), StringComparison.Ordinal);
            Assert.Equal(bytes.Length, image.GetProperty("file_size").GetInt64());
            Assert.Equal(width, image.GetProperty("width").GetInt32());
            Assert.Equal(height, image.GetProperty("height").GetInt32());
            Assert.True(TestImages.HasMagic(bytes, format));
            Assert.Equal((skFormat, width, height), TestImages.Decode(bytes));
        }
    }

    [Fact]
    public async Task Images_AreDeterministicFromThePrompt()
    {
        await using var emulator = await Emulator.Start();

        var first = await emulator.CompletedResult(new { prompt = "same prompt", sync_mode = true });
        var second = await emulator.CompletedResult(new { prompt = "same prompt", sync_mode = true });
        var other = await emulator.CompletedResult(new { prompt = "another prompt", sync_mode = true });

        string Url(System.Text.Json.JsonElement r) => r.GetProperty("images")[0].GetProperty("url").GetString()!;
        Assert.Equal(Url(first), Url(second));
        Assert.NotEqual(Url(first), Url(other));
    }

    [Fact]
    public async Task SyncMode_ReturnsDataUris_AndStoresNoFiles()
    {
        await using var emulator = await Emulator.Start();

        var result = await emulator.CompletedResult(new { prompt = "inline", sync_mode = true, output_format = "jpeg", aspect_ratio = "3:2" });

        var url = result.GetProperty("images")[0].GetProperty("url").GetString()!;
        Assert.StartsWith("data:image/jpeg;base64,", url, StringComparison.Ordinal);
        var bytes = Convert.FromBase64String(url["data:image/jpeg;base64,".Length..]);
        Assert.Equal((SKEncodedImageFormat.Jpeg, 128, 85), TestImages.Decode(bytes));
        var fileName = result.GetProperty("images")[0].GetProperty("file_name").GetString();
        using var file = await emulator.Anonymous.GetAsync($"files/{fileName}", Emulator.Ct);
        Assert.Equal(HttpStatusCode.NotFound, file.StatusCode);
    }

    [Fact]
    public async Task Edit_WithDataUriInput_AndAutoRatio_MatchesTheInputRatio()
    {
        await using var emulator = await Emulator.Start();

        var result = await emulator.CompletedResult(
            new { prompt = "add a moon", image_urls = new[] { TestImages.PngDataUri(200, 100) } }, Emulator.EditModel);

        var image = result.GetProperty("images")[0];
        Assert.Equal(128, image.GetProperty("width").GetInt32());
        Assert.Equal(64, image.GetProperty("height").GetInt32());
        Assert.Contains("add a moon", result.GetProperty("description").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Edit_WithUnreachableUrl_FallsBackToSquare()
    {
        await using var emulator = await Emulator.Start();

        var result = await emulator.CompletedResult(
            new { prompt = "edit", image_urls = Unreachable }, Emulator.EditModel);

        var image = result.GetProperty("images")[0];
        Assert.Equal(128, image.GetProperty("width").GetInt32());
        Assert.Equal(128, image.GetProperty("height").GetInt32());
    }

    [Fact]
    public async Task Edit_WithOwnFileUrl_ReadsTheGeneratedImage()
    {
        await using var emulator = await Emulator.Start();
        var source = await emulator.CompletedResult(new { prompt = "source", aspect_ratio = "9:16" });
        var sourceUrl = source.GetProperty("images")[0].GetProperty("url").GetString();

        var result = await emulator.CompletedResult(new { prompt = "edit it", image_urls = new[] { sourceUrl }, output_format = "webp" }, Emulator.EditModel);

        var image = result.GetProperty("images")[0];
        Assert.Equal(72, image.GetProperty("width").GetInt32());
        Assert.Equal(128, image.GetProperty("height").GetInt32());
        Assert.Equal("image/webp", image.GetProperty("content_type").GetString());
    }

    [Fact]
    public async Task Noise_MakesIncompressibleImages()
    {
        await using var emulator = await Emulator.Start(o => o.ImageLongSide = 256);

        var result = await emulator.CompletedResult(new { prompt = "static [[noise]]", num_images = 2 });

        foreach (var image in result.GetProperty("images").EnumerateArray())
        {
            // RGB noise cannot shrink: at least the raw 3 bytes per pixel.
            Assert.True(image.GetProperty("file_size").GetInt64() >= 256 * 256 * 3, $"only {image.GetProperty("file_size")} bytes");
        }
    }

    [Fact]
    public async Task Noise_AtFullSize_MakesAResultOfTwelveMegabytesOrMore()
    {
        await using var emulator = await Emulator.Start(o => o.ImageLongSide = 1024);

        var result = await emulator.CompletedResult(new { prompt = "big [[noise]]", num_images = 4 });

        var total = 0L;
        foreach (var image in result.GetProperty("images").EnumerateArray())
        {
            using var file = await emulator.Anonymous.GetAsync(image.GetProperty("url").GetString(), Emulator.Ct);
            total += (await file.Content.ReadAsByteArrayAsync(Emulator.Ct)).LongLength;
        }

        Assert.True(total >= 12_000_000, $"only {total} bytes");
    }
}
