using System.Net;
using System.Text.Json;

namespace FalEmulator.Tests;

/// <summary>The CDN side the gateway's image store leans on: storage headers, expiry, the download count and download faults.</summary>
public sealed class FileRetentionTests
{
    [Fact]
    public async Task Submit_WithLifecyclePreference_RecordsIt_AndTheFilesAnswer404OnceExpired()
    {
        await using var emulator = await Emulator.Start();
        using var request = new HttpRequestMessage(HttpMethod.Post, Emulator.Model) { Content = Emulator.JsonBody(new { prompt = "short-lived", num_images = 2 }) };
        request.Headers.Add("X-Fal-Object-Lifecycle-Preference", "{\"expiration_duration_seconds\": 1}");
        request.Headers.Add("X-Fal-Store-IO", "0");
        using var response = await emulator.Client.SendAsync(request, Emulator.Ct);
        var submitted = await Emulator.ReadJson(response);
        var id = submitted.GetProperty("request_id").GetString()!;
        await emulator.WaitCompleted(submitted);
        var (_, result) = await emulator.Result(submitted);
        var urls = result.GetProperty("images").EnumerateArray().Select(i => i.GetProperty("url").GetString()!).ToList();

        Assert.Equal(new StoragePreferences(TimeSpan.FromSeconds(1), StoreIO: false), emulator.State.StorageOf(id));
        Assert.Equal(2, emulator.State.FilesOf(id).Count);
        foreach (var url in urls)
        {
            using var fresh = await emulator.Anonymous.GetAsync(url, Emulator.Ct);
            Assert.Equal(HttpStatusCode.OK, fresh.StatusCode);
        }

        await Task.Delay(TimeSpan.FromSeconds(1.2), Emulator.Ct);
        foreach (var url in urls)
        {
            using var expired = await emulator.Anonymous.GetAsync(url, Emulator.Ct);
            Assert.Equal(HttpStatusCode.NotFound, expired.StatusCode);
        }

        Assert.Equal(4, emulator.State.FileDownloadCount);
        Assert.All(emulator.State.FilesOf(id), name => Assert.Null(emulator.State.FileBytes(name)));
    }

    [Fact]
    public async Task Submit_WithoutStorageHeaders_KeepsFilesAndStoresIo()
    {
        await using var emulator = await Emulator.Start();
        var submitted = await emulator.Accepted(new { prompt = "kept" });
        var id = submitted.GetProperty("request_id").GetString()!;
        await emulator.WaitCompleted(submitted);

        Assert.Equal(StoragePreferences.Default, emulator.State.StorageOf(id));
        var name = Assert.Single(emulator.State.FilesOf(id));
        Assert.NotNull(emulator.State.FileBytes(name));
        Assert.Equal(0, emulator.State.FileDownloadsOf(name));
    }

    [Fact]
    public async Task DownloadFault_FromARule_Answers500Once_ThenTheFile_AndEveryGetIsCounted()
    {
        await using var emulator = await Emulator.Start();
        var submitted = await emulator.Accepted(new { prompt = "flaky cdn" });
        await emulator.WaitCompleted(submitted);
        var (_, result) = await emulator.Result(submitted);
        var url = result.GetProperty("images")[0].GetProperty("url").GetString()!;
        var name = url[(url.IndexOf("/files/", StringComparison.Ordinal) + "/files/".Length)..];
        emulator.State.AddFault(new FaultRule { Operation = FalOperation.Download, Kind = "500", Count = 1 });

        using var first = await emulator.Anonymous.GetAsync(url, Emulator.Ct);
        using var second = await emulator.Anonymous.GetAsync(url, Emulator.Ct);

        Assert.Equal(HttpStatusCode.InternalServerError, first.StatusCode);
        Assert.Equal("internal_error", (await Emulator.ReadJson(first)).GetProperty("error_type").GetString());
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(emulator.State.FileBytes(name), await second.Content.ReadAsByteArrayAsync(Emulator.Ct));
        Assert.Equal(2, emulator.State.FileDownloadsOf(name));
        var stats = JsonDocument.Parse(await emulator.Anonymous.GetStringAsync("_emulator/stats", Emulator.Ct)).RootElement;
        Assert.Equal(2, stats.GetProperty("file_download_count").GetInt32());
    }

    [Fact]
    public async Task DownloadFault_FromThePrompt_HitsOnlyThatJobsFiles()
    {
        await using var emulator = await Emulator.Start();
        var flaky = await emulator.Accepted(new { prompt = "[[fault:503@download*1]] flaky" });
        var steady = await emulator.Accepted(new { prompt = "steady" });
        await emulator.WaitCompleted(flaky);
        await emulator.WaitCompleted(steady);
        var flakyUrl = (await emulator.Result(flaky)).Body.GetProperty("images")[0].GetProperty("url").GetString()!;
        var steadyUrl = (await emulator.Result(steady)).Body.GetProperty("images")[0].GetProperty("url").GetString()!;

        using var steadyGet = await emulator.Anonymous.GetAsync(steadyUrl, Emulator.Ct);
        using var flakyFirst = await emulator.Anonymous.GetAsync(flakyUrl, Emulator.Ct);
        using var flakySecond = await emulator.Anonymous.GetAsync(flakyUrl, Emulator.Ct);

        Assert.Equal(HttpStatusCode.OK, steadyGet.StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, flakyFirst.StatusCode);
        Assert.Equal(HttpStatusCode.OK, flakySecond.StatusCode);
    }
}
