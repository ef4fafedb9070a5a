using System.Net;
using Gateway.Generations;
using Gateway.Storage;
using Gateway.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace Gateway.Tests.Images;

/// <summary>
/// A sync_mode result of over 20 MB (one noise image, a data URI fal sends inline) is copied into the image store without
/// ever being in memory whole: the copy streams it from Redis in ranges into the store. Measured with the runtime's own
/// allocation events over exactly the copy, with nothing else running (a serial collection).
/// </summary>
[Collection(nameof(SerialMeasurements))]
public sealed class ImageCopyMemoryTests(RedisServer redis, AzuriteServer azurite) : IClassFixture<AzuriteServer>
{
    private const int MiB = 1024 * 1024;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("FileSystem")]
    [InlineData("AzureBlob")]
    public async Task SyncModeResultOver20Mb_IsStored_WithNoBufferOfTwoMegabytes(string backend)
    {
        var settings = backend == "FileSystem"
            ? new Dictionary<string, string?> { ["Images:Store"] = "FileSystem", ["Images:Path"] = Directory.CreateTempSubdirectory("gateway-images-").FullName }
            : new Dictionary<string, string?>
            {
                ["Images:Store"] = "AzureBlob",
                ["Images:AzureBlob:ConnectionString"] = azurite.ConnectionString,
                ["Images:AzureBlob:Container"] = "m" + Guid.NewGuid().ToString("N")[..20],
            };
        settings["Images:CopyPollInterval"] = "00:00:00.050";
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.ImageLongSide = 2400, settings: settings);
        var client = harness.Client();
        var store = harness.Services.GetRequiredService<IGenerationStore>();
        await using var connection = await ConnectionMultiplexer.ConnectAsync(harness.RedisConnectionString!);
        var db = connection.GetDatabase();

        // A replica that has copied before (clients, pools and the container made): what is measured is a copy, not a first start.
        var warm = await client.SubmitAsync(new { prompt = "[[run:10]] a small one first", sync_mode = true });
        await WaitUntilCompletedAsync(client, warm);
        await ImageStoreTests.WaitForImageCopyAsync(client, warm, "stored");

        var id = await client.SubmitAsync(new { prompt = "[[noise]] [[run:1500]] a very large inline image", sync_mode = true });
        // As another replica would, the test holds the generation's copy lease until it has its measuring in place.
        Assert.True(await db.StringSetAsync(RedisKeys.Lease("images", id), "the-test", TimeSpan.FromMinutes(2), When.NotExists));
        await WaitUntilCompletedAsync(client, id);
        var image = (byte[])(await db.StringGetAsync(RedisKeys.Blob(id, 0)))!;
        Assert.True(Base64Length(image.Length) > 20_000_000, $"the data URI is only {Base64Length(image.Length)} characters");
        Assert.Equal(ImageCopyState.Pending, (await store.GetAsync(id, Ct))!.ImageCopy);

        GC.Collect();
        using var watch = new AllocationWatch();
        await watch.CalibrateAsync(2 * MiB, Ct);
        await db.KeyDeleteAsync(RedisKeys.Lease("images", id));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while ((await store.GetAsync(id, Ct))!.ImageCopy != ImageCopyState.Stored)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the copy did not finish: {(await store.GetAsync(id, Ct))!.ImageCopy}");
            await Task.Delay(100, Ct);
        }

        watch.Stop();
        TestContext.Current.TestOutputHelper?.WriteLine($"{backend}: copying a {image.Length / (double)MiB:F1} MiB image ({Base64Length(image.Length) / (double)MiB:F1} MiB as a data URI): {watch}");
        // Nothing near the image's 16.5 MiB: the copy moves 64 KiB ranges (the Blob client also makes one 1 MiB buffer the
        // first time a process uploads a large blob, and none for a 40 MB upload after: it does not grow with the image).
        Assert.True(watch.LargestObjectBytes < 2 * MiB, $"the copy allocated one object of {watch.LargestObjectBytes} bytes: {watch}");

        var url = ImageStoreTests.ImageUrls(await ImageStoreTests.WaitForImageCopyAsync(client, id, "stored")).Single();
        using var stored = await client.GetAsync(url, Ct);
        Assert.Equal(HttpStatusCode.OK, stored.StatusCode);
        Assert.Equal(image, await stored.Content.ReadAsByteArrayAsync(Ct));
        Assert.False(await db.KeyExistsAsync(RedisKeys.Blob(id, 0)), "the blob should be dropped once the image is in the store");
    }

    private static long Base64Length(long bytes) => (bytes + 2) / 3 * 4;

    /// <summary>
    /// Polls the status until COMPLETED. Storing a 17 MB value can hold the replica's one Redis connection past its health
    /// PING's 500 ms on a busy machine, and the replica then answers 503 + Retry-After for a moment: a poller retries.
    /// </summary>
    private static async Task WaitUntilCompletedAsync(HttpClient client, string id)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            using var response = await client.GetAsync($"/v1/generations/{id}/status", Ct);
            var status = await response.JsonAsync();
            if (response.StatusCode == HttpStatusCode.OK && status["status"]!.GetValue<string>() == "COMPLETED")
            {
                return;
            }

            Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable, $"status answered {(int)response.StatusCode}: {status}");
            Assert.True(DateTime.UtcNow < deadline, $"generation {id} did not complete in time: {status}");
            await Task.Delay(100, Ct);
        }
    }
}
