using System.Net;
using System.Net.Http.Headers;

namespace FalEmulator.Tests;

public sealed class StorageTests
{
    [Fact]
    public async Task Upload_InitiateThenPut_ServesTheBytesAtFileUrl()
    {
        await using var emulator = await Emulator.Start();
        var bytes = TestImages.Png(40, 30);

        using var initiate = await emulator.Client.PostAsync("rest/storage/upload/initiate?storage_type=fal-cdn-v3",
            Emulator.JsonBody(new { content_type = "image/png", file_name = "my photo.png" }), Emulator.Ct);
        var urls = await Emulator.ReadJson(initiate);
        var uploadUrl = urls.GetProperty("upload_url").GetString()!;
        var fileUrl = urls.GetProperty("file_url").GetString()!;

        using var before = await emulator.Anonymous.GetAsync(fileUrl, Emulator.Ct);
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        using var put = await emulator.Anonymous.PutAsync(uploadUrl, content, Emulator.Ct);
        using var after = await emulator.Anonymous.GetAsync(fileUrl, Emulator.Ct);

        Assert.Equal(HttpStatusCode.OK, initiate.StatusCode);
        Assert.StartsWith(emulator.Host.QueueBaseUrl + "/files/", fileUrl, StringComparison.Ordinal);
        Assert.EndsWith(".png", fileUrl, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, before.StatusCode);
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        Assert.Equal("image/png", after.Content.Headers.ContentType?.MediaType);
        Assert.Equal(bytes, await after.Content.ReadAsByteArrayAsync(Emulator.Ct));
        Assert.Equal(1, emulator.State.UploadCount);
        Assert.Equal(1, emulator.State.UploadPutCount);
    }

    [Fact]
    public async Task Upload_ToUnknownUploadUrl_Returns404()
    {
        await using var emulator = await Emulator.Start();

        using var put = await emulator.Anonymous.PutAsync("upload/nope", new ByteArrayContent([1, 2, 3]), Emulator.Ct);

        Assert.Equal(HttpStatusCode.NotFound, put.StatusCode);
        Assert.Equal("Upload not found", (await Emulator.ReadJson(put)).GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Upload_UsedAsEditInput_DrivesTheAutoRatio()
    {
        await using var emulator = await Emulator.Start();
        using var initiate = await emulator.Client.PostAsync("rest/storage/upload/initiate?storage_type=fal-cdn-v3",
            Emulator.JsonBody(new { content_type = "image/png", file_name = "tall.png" }), Emulator.Ct);
        var urls = await Emulator.ReadJson(initiate);
        using var put = await emulator.Anonymous.PutAsync(urls.GetProperty("upload_url").GetString(),
            new ByteArrayContent(TestImages.Png(30, 60)), Emulator.Ct);

        var result = await emulator.CompletedResult(
            new { prompt = "edit", image_urls = new[] { urls.GetProperty("file_url").GetString() } }, Emulator.EditModel);

        Assert.Equal(64, result.GetProperty("images")[0].GetProperty("width").GetInt32());
        Assert.Equal(128, result.GetProperty("images")[0].GetProperty("height").GetInt32());
    }

    [Fact]
    public async Task MultipartUpload_PartsThenComplete_AssemblesTheFile()
    {
        await using var emulator = await Emulator.Start();
        using var initiate = await emulator.Client.PostAsync("rest/storage/upload/initiate-multipart?storage_type=fal-cdn-v3",
            Emulator.JsonBody(new { content_type = "application/octet-stream", file_name = "big.bin" }), Emulator.Ct);
        var urls = await Emulator.ReadJson(initiate);
        var uploadUrl = urls.GetProperty("upload_url").GetString()!;

        using var part2 = await emulator.Anonymous.PutAsync($"{uploadUrl}/2", new ByteArrayContent([4, 5]), Emulator.Ct);
        using var part1 = await emulator.Anonymous.PutAsync($"{uploadUrl}/1", new ByteArrayContent([1, 2, 3]), Emulator.Ct);
        using var complete = await emulator.Client.PostAsync("rest/storage/upload/complete-multipart?storage_type=fal-cdn-v3",
            Emulator.JsonBody(new
            {
                upload_url = uploadUrl,
                parts = new[] { new { part_number = 1, etag = part1.Headers.ETag?.Tag }, new { part_number = 2, etag = part2.Headers.ETag?.Tag } },
            }), Emulator.Ct);
        using var file = await emulator.Anonymous.GetAsync(urls.GetProperty("file_url").GetString(), Emulator.Ct);

        Assert.NotNull(part1.Headers.ETag);
        Assert.Equal(HttpStatusCode.OK, complete.StatusCode);
        Assert.Equal(urls.GetProperty("file_url").GetString(), (await Emulator.ReadJson(complete)).GetProperty("file_url").GetString());
        Assert.Equal([1, 2, 3, 4, 5], await file.Content.ReadAsByteArrayAsync(Emulator.Ct));
    }

    [Fact]
    public async Task MultipartUpload_CompleteViaUploadUrl_AlsoAssembles()
    {
        await using var emulator = await Emulator.Start();
        using var initiate = await emulator.Client.PostAsync("rest/storage/upload/initiate-multipart?storage_type=fal-cdn-v3",
            Emulator.JsonBody(new { content_type = "text/plain", file_name = "a.txt" }), Emulator.Ct);
        var urls = await Emulator.ReadJson(initiate);
        var uploadUrl = urls.GetProperty("upload_url").GetString()!;
        using var part = await emulator.Anonymous.PutAsync($"{uploadUrl}/1", new StringContent("hello"), Emulator.Ct);

        using var complete = await emulator.Anonymous.PostAsync($"{uploadUrl}/complete",
            Emulator.JsonBody(new { parts = new[] { new { partNumber = 1, etag = part.Headers.ETag?.Tag } } }), Emulator.Ct);
        using var file = await emulator.Anonymous.GetAsync(urls.GetProperty("file_url").GetString(), Emulator.Ct);

        Assert.Equal(HttpStatusCode.OK, complete.StatusCode);
        Assert.Equal("hello", await file.Content.ReadAsStringAsync(Emulator.Ct));
        Assert.Equal("text/plain", file.Content.Headers.ContentType?.MediaType);
    }
}
