using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Gateway.Tests.Infrastructure;
using SkiaSharp;

namespace Gateway.Tests;

public sealed class FileUploadTests(RedisServer redis)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task UploadFile_Png_Returns201WithFalsUrl_ThatWorksInAnEdit()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var client = harness.Client();
        var png = Png(32, 24);

        using var response = await client.PostAsync("/v1/files", Form(png, "my photo.png", "application/octet-stream"), Ct);
        var body = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var url = body["url"]!.GetValue<string>();
        Assert.Equal(url, response.Headers.Location!.OriginalString);
        Assert.Equal("image/png", body["content_type"]!.GetValue<string>());
        Assert.Equal("myphoto.png", body["file_name"]!.GetValue<string>());
        Assert.Equal(png.Length, body["file_size"]!.GetValue<long>());
        Assert.Equal(png, await new HttpClient().GetByteArrayAsync(url, Ct));
        var initiate = Assert.Single(harness.Fal.Requests, r => r.PathAndQuery.StartsWith("/rest/storage/upload/initiate", StringComparison.Ordinal));
        Assert.Equal("/rest/storage/upload/initiate?storage_type=fal-cdn-v3", initiate.PathAndQuery);
        Assert.Equal($"Key {harness.FalKey}", initiate.Headers["Authorization"]);
        var put = Assert.Single(harness.Fal.Requests, r => r.Method == "PUT");
        Assert.False(put.Headers.ContainsKey("Authorization"));

        var id = await client.SubmitAsync(new { prompt = "make it blue", image_urls = new[] { url } }, "/v1/edits");
        var done = await client.WaitUntilDoneAsync(id);
        Assert.Equal("COMPLETED", done["status"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("jpeg", "image/jpeg", "jpg")]
    [InlineData("webp", "image/webp", "webp")]
    public async Task UploadFile_OtherImageTypes_AreTypedByTheirBytes(string format, string contentType, string extension)
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        using var bitmap = new SKBitmap(8, 8);
        bitmap.Erase(SKColors.Teal);
        using var data = bitmap.Encode(format == "jpeg" ? SKEncodedImageFormat.Jpeg : SKEncodedImageFormat.Webp, 90);

        using var response = await harness.Client().PostAsync("/v1/files", Form(data.ToArray(), "image.png", "image/png"), Ct);
        var body = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(contentType, body["content_type"]!.GetValue<string>());
        Assert.Equal($"image.{extension}", body["file_name"]!.GetValue<string>());
    }

    [Fact]
    public async Task UploadFile_TextFileNamedPng_Returns415NamingFile_AndNothingReachesFal()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);

        using var response = await harness.Client().PostAsync("/v1/files",
            Form(Encoding.UTF8.GetBytes("this is not an image, whatever the name says"), "cat.png", "image/png"), Ct);
        var problem = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("urn:mai-image-gateway:problem:unsupported-media-type", problem["type"]!.GetValue<string>());
        Assert.Equal("file", problem.Field());
        Assert.Equal(0, harness.Fal.UploadCount);
    }

    [Fact]
    public async Task UploadFile_OverTheSizeCap_Returns413NamingFile()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: new Dictionary<string, string?> { ["Gateway:MaxUploadBytes"] = "4096" });
        var big = new byte[64 * 1024];
        Png(4, 4).CopyTo(big, 0);

        using var response = await harness.Client().PostAsync("/v1/files", Form(big, "big.png", "image/png"), Ct);
        var problem = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("urn:mai-image-gateway:problem:body-too-large", problem["type"]!.GetValue<string>());
        Assert.Equal("file", problem.Field());
        Assert.Contains("4096", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task UploadFile_WithoutFilePart_Returns400NamingFile()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        using var form = new MultipartFormDataContent { { new ByteArrayContent(Png(2, 2)), "image", "a.png" }, { new StringContent("x"), "note" } };

        using var response = await harness.Client().PostAsync("/v1/files", form, Ct);
        var problem = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("urn:mai-image-gateway:problem:validation", problem["type"]!.GetValue<string>());
        Assert.Equal("file", problem.Field());
        Assert.Equal(0, harness.Fal.UploadCount);
    }

    [Fact]
    public async Task UploadFile_EmptyFile_Returns400NamingFile()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);

        using var response = await harness.Client().PostAsync("/v1/files", Form([], "empty.png", "image/png"), Ct);
        var problem = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("file", problem.Field());
    }

    [Fact]
    public async Task UploadFile_NotMultipart_Returns415NamingContentType()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);

        using var response = await harness.Client().PostAsync("/v1/files", new ByteArrayContent(Png(2, 2)) { Headers = { ContentType = new("image/png") } }, Ct);
        var problem = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("urn:mai-image-gateway:problem:unsupported-media-type", problem["type"]!.GetValue<string>());
        Assert.Equal("Content-Type", problem.Field());
    }

    [Fact]
    public async Task UploadFile_WithoutClientKey_Returns401()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);

        using var response = await harness.Client(key: null).PostAsync("/v1/files", Form(Png(2, 2), "a.png", "image/png"), Ct);
        var problem = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("urn:mai-image-gateway:problem:unauthorized", problem["type"]!.GetValue<string>());
        Assert.Equal(0, harness.Fal.UploadCount);
    }

    private static MultipartFormDataContent Form(byte[] bytes, string fileName, string declaredType)
    {
        var file = new ByteArrayContent(bytes);
        file.Headers.ContentType = new MediaTypeHeaderValue(declaredType);
        return new MultipartFormDataContent { { file, "file", fileName } };
    }

    private static byte[] Png(int width, int height)
    {
        using var bitmap = new SKBitmap(width, height);
        bitmap.Erase(SKColors.OrangeRed);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
