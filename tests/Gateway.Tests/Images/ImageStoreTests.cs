using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using FalEmulator;
using Gateway.Links;
using Gateway.Tests.Infrastructure;
using Gateway.Tests.Unit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Tests.Images;

/// <summary>
/// Issue 15 with one image store backend (the subclasses: a directory, Azurite): a completed generation's images are
/// copied once into the store and served by the gateway to their owner, byte for byte, after fal has let its copy go.
/// </summary>
public abstract class ImageStoreTests(RedisServer redis)
{
    private static readonly string LinkKey = Convert.ToBase64String(Enumerable.Range(90, 32).Select(i => (byte)i).ToArray());

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected RedisServer Redis { get; } = redis;

    /// <summary>Settings naming a store of this backend that no other test uses (<c>Images:Store</c> and where).</summary>
    protected abstract Dictionary<string, string?> NewStore();

    /// <summary>Whether the backend itself (not through the gateway) holds image <paramref name="index"/> of <paramref name="id"/>.</summary>
    protected abstract Task<bool> HoldsAsync(Dictionary<string, string?> store, string id, int index);

    protected static Dictionary<string, string?> With(Dictionary<string, string?> store, params (string Key, string? Value)[] more)
    {
        var all = new Dictionary<string, string?>(store)
        {
            ["Images:CopyPollInterval"] = "00:00:00.050",
            ["Images:CopyRetryDelay"] = "00:00:00.200",
        };
        foreach (var (key, value) in more)
        {
            all[key] = value;
        }

        return all;
    }

    [Fact]
    public async Task CompletedImages_ComeFromTheGatewayByteForByte_AfterFalHasDeletedItsCopy()
    {
        var store = NewStore();
        await using var harness = await GatewayHarness.StartAsync(Redis, settings: With(store, ("Images:FalExpiration", "00:00:02")));
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "a lighthouse", num_images = 2 });
        await client.WaitUntilDoneAsync(id);
        var names = harness.Fal.FilesOf(id);
        var falBytes = names.Select(n => harness.Fal.FileBytes(n) ?? throw new InvalidOperationException($"fal's {n} is already gone")).ToList();

        var generation = await WaitForImageCopyAsync(client, id, "stored");
        Assert.Equal(names.Count, harness.Fal.FileDownloadCount); // each image fetched from fal once, and never again
        await WaitUntilAsync(() => names.All(n => harness.Fal.FileBytes(n) is null), "fal's copies to expire");
        using var anonymous = new HttpClient();
        foreach (var name in names)
        {
            using var gone = await anonymous.GetAsync(new Uri(harness.Emulator.BaseUrl, $"files/{name}"), Ct);
            Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        }

        Assert.Equal(new StoragePreferences(TimeSpan.FromSeconds(2), StoreIO: true), harness.Fal.StorageOf(id));
        Assert.Equal("COMPLETED", generation["status"]!.GetValue<string>());
        var urls = ImageUrls(generation);
        Assert.Equal([.. Enumerable.Range(0, 2).Select(i => $"{harness.GatewayUrl.GetLeftPart(UriPartial.Authority)}/v1/generations/{id}/images/{i}")], urls);
        for (var i = 0; i < urls.Count; i++)
        {
            using var image = await client.GetAsync(urls[i], Ct);
            var bytes = await image.Content.ReadAsByteArrayAsync(Ct);
            Assert.Equal(HttpStatusCode.OK, image.StatusCode);
            Assert.Equal(falBytes[i], bytes);
            Assert.True(await HoldsAsync(store, id, i));
            Assert.Equal("image/png", image.Content.Headers.ContentType?.MediaType);
            Assert.Equal($"\"{Convert.ToHexStringLower(SHA256.HashData(bytes))}\"", image.Headers.ETag?.ToString());
            Assert.True(image.Headers.CacheControl is { Private: true, MaxAge: { } maxAge } && maxAge > TimeSpan.FromDays(6), image.Headers.CacheControl?.ToString());
            Assert.Contains("immutable", image.Headers.CacheControl!.Extensions.Select(e => e.Name));
            Assert.Equal("nosniff", image.Headers.GetValues("X-Content-Type-Options").Single());
            Assert.Equal(falBytes[i].Length, image.Content.Headers.ContentLength);

            using var range = new HttpRequestMessage(HttpMethod.Get, urls[i]);
            range.Headers.Range = new RangeHeaderValue(10, 19);
            using var partial = await client.SendAsync(range, Ct);
            Assert.Equal(HttpStatusCode.PartialContent, partial.StatusCode);
            Assert.Equal(falBytes[i][10..20], await partial.Content.ReadAsByteArrayAsync(Ct));
            Assert.Equal($"bytes 10-19/{falBytes[i].Length}", partial.Content.Headers.ContentRange?.ToString());

            using var conditional = new HttpRequestMessage(HttpMethod.Get, urls[i]);
            conditional.Headers.IfNoneMatch.Add(image.Headers.ETag!);
            using var notModified = await client.SendAsync(conditional, Ct);
            Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        }

        // Every representation of the result links the stored copies: /result, the SSE completed event, the proxy's result.
        using var resultResponse = await client.GetAsync($"/v1/generations/{id}/result", Ct);
        Assert.Equal(urls, ImageUrls(new JsonObject { ["result"] = (await resultResponse.JsonAsync()).DeepClone() }));
        using var events = await client.GetAsync($"/v1/generations/{id}/events", HttpCompletionOption.ResponseHeadersRead, Ct);
        var completed = (await new ServerSentEventReader(await events.Content.ReadAsStreamAsync(Ct)).ReadAllAsync(Ct)).Single(e => e.Event == "completed");
        var streamed = JsonNode.Parse(completed.Data)!;
        Assert.Equal("stored", streamed["image_copy"]!.GetValue<string>());
        Assert.Equal(urls, ImageUrls(streamed));
        using var proxied = await FalProxyTests.ProxyAsync(client, HttpMethod.Get, $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{id}");
        Assert.Equal(urls, ImageUrls(new JsonObject { ["result"] = (await proxied.JsonAsync()).DeepClone() }));
        using var history = await client.GetAsync("/v1/generations", Ct);
        var item = (await history.JsonAsync())["items"]!.AsArray().Single(i => i!["id"]!.GetValue<string>() == id)!;
        Assert.Equal("stored", item["image_copy"]!.GetValue<string>());
        Assert.Equal(urls, item["images"]!.AsArray().Select(i => i!["url"]!.GetValue<string>())); // a gallery shows the stored copies
    }

    [Fact]
    public async Task SignedImageLink_OpensInAnImgOfAPageInChromium_AndFailsOnceExpiredOrTampered()
    {
        var store = NewStore();
        await using var harness = await GatewayHarness.StartAsync(Redis, settings: With(store, ("Gateway:LinkSigningKey", LinkKey)));
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "framed", num_images = 2 });
        var other = await client.SubmitAsync(new { prompt = "another" });
        await client.WaitUntilDoneAsync(id);
        await client.WaitUntilDoneAsync(other);
        var urls = ImageUrls(await WaitForImageCopyAsync(client, id, "stored"));
        var otherUrl = ImageUrls(await WaitForImageCopyAsync(client, other, "stored")).Single();

        var route = $"{harness.GatewayUrl.GetLeftPart(UriPartial.Authority)}/v1/generations/{id}/images/";
        Assert.All(urls, (url, i) => Assert.StartsWith($"{route}{i}?ticket=", url, StringComparison.Ordinal));
        var ticket = urls[1][(urls[1].IndexOf("?ticket=", StringComparison.Ordinal) + "?ticket=".Length)..];
        Assert.Equal(ticket, urls[0][(urls[0].IndexOf("?ticket=", StringComparison.Ordinal) + "?ticket=".Length)..]); // one ticket, every image
        var expired = LinkTicketUnitTests.Tickets(LinkKey, new FakeTimeProvider(DateTimeOffset.UtcNow.AddMinutes(-6)))
            .Issue(new LinkScope(id, "images", "alpha", null));
        var eventsTicket = LinkTicketUnitTests.Tickets(LinkKey).Issue(new LinkScope(id, "events", "alpha", null));
        var tampered = ticket[..^2] + (ticket[^2] == 'A' ? "B" : "A") + ticket[^1];
        var otherTicket = otherUrl[(otherUrl.IndexOf("?ticket=", StringComparison.Ordinal) + "?ticket=".Length)..];

        var page = await ImagesInChromiumAsync(new Dictionary<string, string>
        {
            ["first"] = urls[0],
            ["second"] = urls[1],
            ["expired"] = $"{route}1?ticket={expired}",
            ["tampered"] = $"{route}1?ticket={tampered}",
            ["unsigned"] = $"{route}1",
            ["events-ticket"] = $"{route}1?ticket={eventsTicket}",
            ["other-generations-ticket"] = $"{route}1?ticket={otherTicket}",
        });

        Assert.NotEqual(harness.GatewayUrl.GetLeftPart(UriPartial.Authority), page["origin"]!.GetValue<string>()); // another origin
        foreach (var shown in new[] { "first", "second" })
        {
            var image = page["images"]![shown]!;
            Assert.True(image["loaded"]!.GetValue<bool>() && image["status"]!.GetValue<int>() == 200, $"{shown}: {image}");
            Assert.Equal((64, 64), (image["width"]!.GetValue<int>(), image["height"]!.GetValue<int>()));
        }

        var anonymous = harness.Client(key: null);
        foreach (var refused in new[] { "expired", "tampered", "unsigned", "events-ticket", "other-generations-ticket" })
        {
            // Chromium blocks the problem+json body of a refused image (ORB) and reports only that the image failed.
            var image = page["images"]![refused]!;
            Assert.True(!image["loaded"]!.GetValue<bool>() && image["width"]!.GetValue<int>() == 0, $"{refused}: {image}");
            using var answer = await anonymous.GetAsync(image["name"]!.GetValue<string>() switch
            {
                "expired" => $"{route}1?ticket={expired}",
                "tampered" => $"{route}1?ticket={tampered}",
                "unsigned" => $"{route}1",
                "events-ticket" => $"{route}1?ticket={eventsTicket}",
                _ => $"{route}1?ticket={otherTicket}",
            }, Ct);
            Assert.True(answer.StatusCode == HttpStatusCode.Unauthorized, $"{refused}: {(int)answer.StatusCode}");
            Assert.Equal("urn:mai-image-gateway:problem:unauthorized", (await answer.JsonAsync())["type"]!.GetValue<string>());
        }

        Assert.DoesNotContain(ticket, harness.Logs(), StringComparison.Ordinal);
    }

    /// <summary>
    /// tests/ImageBrowser: a page on its own loopback origin with one <c>&lt;img&gt;</c> per URL, in headless Chromium; for
    /// each image whether it loaded, its size and the status the browser got.
    /// </summary>
    internal static async Task<JsonNode> ImagesInChromiumAsync(Dictionary<string, string> urls)
    {
        const string Chromium = "/usr/bin/chromium";
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing; install Debian's Chromium: apt-get install -y chromium");
        var folder = await NodeTools.InstalledFolderAsync("ImageBrowser", Path.Combine("playwright-core", "package.json"));
        var (exit, output) = await NodeTools.RunAsync("node", ["images.mjs"], folder, TimeSpan.FromMinutes(2), new Dictionary<string, string?>
        {
            ["IMAGE_URLS"] = System.Text.Json.JsonSerializer.Serialize(urls),
            ["CHROMIUM"] = Chromium,
        });
        Assert.True(exit == 0, $"the browser page failed ({exit}):\n{output}");
        return JsonNode.Parse(output.Trim().Split('\n')[^1])!;
    }

    [Fact]
    public async Task AnotherClient_Gets404_AsForAnUnknownGenerationOrImage()
    {
        var store = NewStore();
        await using var harness = await GatewayHarness.StartAsync(Redis, settings: With(store));
        var alpha = harness.Client();
        var id = await alpha.SubmitAsync(new { prompt = "mine" });
        await alpha.WaitUntilDoneAsync(id);
        var url = ImageUrls(await WaitForImageCopyAsync(alpha, id, "stored")).Single();

        using var other = await harness.Client(GatewayHarness.BetaKey).GetAsync(url, Ct);
        using var unknown = await alpha.GetAsync($"/v1/generations/{Guid.NewGuid()}/images/0", Ct);
        using var beyond = await alpha.GetAsync($"/v1/generations/{id}/images/1", Ct);
        using var anonymous = await harness.Client(key: null).GetAsync(url, Ct);
        using var mine = await alpha.GetAsync(url, Ct);

        foreach (var (response, detail) in new[] { (other, $"no generation '{id}'"), (unknown, "no generation"), (beyond, "no image 1") })
        {
            var problem = await response.JsonAsync();
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("urn:mai-image-gateway:problem:not-found", problem["type"]!.GetValue<string>());
            Assert.Contains(detail, problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal(HttpStatusCode.OK, mine.StatusCode);
    }

    [Fact]
    public async Task ThreeReplicas_CopyEachImageExactlyOnce()
    {
        var store = NewStore();
        await using var harness = await GatewayHarness.StartAsync(Redis, settings: With(store), replicas: 3);
        using var copies = new CounterWatch(harness.ReplicaServices, "gateway.images.copies", "outcome");
        var clients = Enumerable.Range(0, 3).Select(r => harness.Client(replica: r)).ToList();
        var ids = new List<string>();
        for (var g = 0; g < 3; g++)
        {
            ids.Add(await clients[g].SubmitAsync(new { prompt = $"gallery {g}", num_images = 2 }));
        }

        // Every replica polls every generation at once, so each may be the one that sees it end.
        await Task.WhenAll(ids.SelectMany(id => clients.Select(c => c.WaitUntilDoneAsync(id))));
        foreach (var id in ids)
        {
            await WaitForImageCopyAsync(clients[2], id, "stored");
        }

        await Task.Delay(500, Ct); // room for a duplicate copy to show, were there one
        foreach (var id in ids)
        {
            var names = harness.Fal.FilesOf(id);
            Assert.Equal(2, names.Count);
            Assert.All(names, n => Assert.True(harness.Fal.FileDownloadsOf(n) == 1, $"{n} was downloaded {harness.Fal.FileDownloadsOf(n)} times"));
        }

        Assert.Equal(6, harness.Fal.FileDownloadCount);
        Assert.True(copies["stored"] == 3 && copies["retry"] == 0, copies.ToString());
    }

    [Fact]
    public async Task CopyThatFailsOnce_IsRetried_AndThenStored()
    {
        var store = NewStore();
        await using var harness = await GatewayHarness.StartAsync(Redis, settings: With(store));
        using var copies = new CounterWatch(harness.ReplicaServices, "gateway.images.copies", "outcome");
        harness.Fal.AddFault(new FaultRule { Operation = FalOperation.Download, Kind = "500", Count = 1 });
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "flaky cdn" });
        await client.WaitUntilDoneAsync(id);
        var name = harness.Fal.FilesOf(id).Single();
        var falBytes = harness.Fal.FileBytes(name);

        var url = ImageUrls(await WaitForImageCopyAsync(client, id, "stored")).Single();
        using var image = await client.GetAsync(url, Ct);

        Assert.Equal(falBytes, await image.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal(2, harness.Fal.FileDownloadsOf(name));
        Assert.True(copies["retry"] == 1 && copies["stored"] == 1 && copies["failed"] == 0, copies.ToString());
        Assert.True(Logged(harness, Serilog.Events.LogEventLevel.Warning, "Copying the images of generation {GenerationId} failed (attempt {Attempt})", id));
    }

    [Fact]
    public async Task CopyThatAlwaysFails_KeepsFalsUrls_AndIsCountedAndLogged()
    {
        var store = NewStore();
        await using var harness = await GatewayHarness.StartAsync(Redis, settings: With(store, ("Images:CopyAttempts", "3")));
        using var copies = new CounterWatch(harness.ReplicaServices, "gateway.images.copies", "outcome");
        harness.Fal.AddFault(new FaultRule { Operation = FalOperation.Download, Kind = "503", Count = -1 });
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "cdn down" });
        await client.WaitUntilDoneAsync(id);

        var generation = await WaitForImageCopyAsync(client, id, "failed");
        var name = harness.Fal.FilesOf(id).Single();
        using var image = await client.GetAsync($"/v1/generations/{id}/images/0", Ct);
        using var metrics = await client.GetAsync("/metrics", Ct);

        Assert.Equal(new Uri(harness.Emulator.BaseUrl, $"files/{name}").ToString(), ImageUrls(generation).Single());
        Assert.Equal(3, harness.Fal.FileDownloadsOf(name));
        Assert.True(copies["retry"] == 2 && copies["failed"] == 1 && copies["stored"] == 0, copies.ToString());
        Assert.Equal(HttpStatusCode.NotFound, image.StatusCode);
        Assert.False(await HoldsAsync(store, id, 0));
        Assert.Matches("gateway_images_copies_total\\{[^}]*outcome=\"failed\"[^}]*\\} [1-9]", await metrics.Content.ReadAsStringAsync(Ct));
        Assert.True(Logged(harness, Serilog.Events.LogEventLevel.Error, "Gave up copying the images of generation {GenerationId} after {Attempts} attempts", id));
    }

    [Fact]
    public async Task StoredImages_ExpireWithTheirRecord()
    {
        var store = NewStore();
        await using var harness = await GatewayHarness.StartAsync(Redis, settings: With(store,
            ("Gateway:ResultTtl", "00:01:00"), ("Images:SweepInterval", "00:00:01")));
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "ephemeral" });
        await client.WaitUntilDoneAsync(id);
        var url = ImageUrls(await WaitForImageCopyAsync(client, id, "stored")).Single();
        using (var fresh = await client.GetAsync(url, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, fresh.StatusCode);
        }

        Assert.True(await HoldsAsync(store, id, 0));

        // The record expires from Redis a minute after it completed; the image goes with it, at the next sweep.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (true)
        {
            using var record = await client.GetAsync($"/v1/generations/{id}", Ct);
            if (record.StatusCode == HttpStatusCode.NotFound)
            {
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, "the generation did not expire within 90 s");
            Assert.True(await HoldsAsync(store, id, 0), "the image went before its record");
            await Task.Delay(1000, Ct);
        }

        await WaitUntilAsync(async () => !await HoldsAsync(store, id, 0), "the sweep to delete the expired image", TimeSpan.FromSeconds(15));
        using var gone = await client.GetAsync(url, Ct);
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    /// <summary>Polls the Generation until its <c>image_copy</c> is <paramref name="state"/>; returns it.</summary>
    internal static async Task<JsonNode> WaitForImageCopyAsync(HttpClient client, string id, string state, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            using var response = await client.GetAsync($"/v1/generations/{id}", Ct);
            var generation = await response.JsonAsync();
            if (generation["image_copy"]?.GetValue<string>() == state)
            {
                return generation;
            }

            Assert.True(DateTime.UtcNow < deadline, $"image_copy did not become {state}: {generation["image_copy"]}");
            await Task.Delay(100, Ct);
        }
    }

    /// <summary>Whether a replica logged at <paramref name="level"/> a line whose template starts so, about generation <paramref name="id"/>.</summary>
    internal static bool Logged(GatewayHarness harness, Serilog.Events.LogEventLevel level, string templateStart, string id) =>
        harness.LogEvents.Any(e => e.Level == level && e.MessageTemplate.Text.StartsWith(templateStart, StringComparison.Ordinal)
            && e.Properties.TryGetValue("GenerationId", out var value) && value is Serilog.Events.ScalarValue { Value: string logged } && logged == id);

    internal static List<string> ImageUrls(JsonNode generation) =>
        [.. generation["result"]!["images"]!.AsArray().Select(i => i!["url"]!.GetValue<string>())];

    internal static Task WaitUntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        WaitUntilAsync(() => Task.FromResult(condition()), what, timeout);

    internal static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(100, Ct);
        }
    }
}

/// <summary><see cref="ImageStoreTests"/> with <c>Images:Store=FileSystem</c>, each test in a directory of its own.</summary>
public sealed class FileSystemImageStoreTests(RedisServer redis) : ImageStoreTests(redis)
{
    protected override Dictionary<string, string?> NewStore() => new()
    {
        ["Images:Store"] = "FileSystem",
        ["Images:Path"] = Directory.CreateTempSubdirectory("gateway-images-").FullName,
    };

    protected override Task<bool> HoldsAsync(Dictionary<string, string?> store, string id, int index) =>
        Task.FromResult(File.Exists(Path.Combine(store["Images:Path"]!, id, index.ToString(System.Globalization.CultureInfo.InvariantCulture))));

    /// <summary>What <c>dotnet run</c> gives: no Redis (one replica, in memory) and a directory.</summary>
    [Fact]
    public async Task WithoutRedis_TheOneReplicaCopiesAndServes_AndFreesTheDataUri()
    {
        var store = NewStore();
        await using var harness = await GatewayHarness.StartAsync(redis: null, e => e.ImageLongSide = 256, settings: With(store,
            ("Gateway:InlineResultMaxBytes", "1024")));
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "[[noise]] inline", sync_mode = true });
        await client.WaitUntilDoneAsync(id);
        using (var pending = await client.GetAsync($"/v1/generations/{id}/result", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, pending.StatusCode);
        }

        var url = ImageUrls(await WaitForImageCopyAsync(client, id, "stored")).Single();
        using var image = await client.GetAsync(url, Ct);
        var stored = await harness.Services.GetRequiredService<Gateway.Generations.IGenerationStore>().GetResultAsync(id, Ct);

        Assert.Equal(HttpStatusCode.OK, image.StatusCode);
        Assert.True(await HoldsAsync(store, id, 0));
        Assert.Equal("image/png", image.Content.Headers.ContentType?.MediaType);
        Assert.Empty(stored!.Blobs[0]); // the data URI's bytes are let go once the copy is linked
    }
}

/// <summary><see cref="ImageStoreTests"/> with <c>Images:Store=AzureBlob</c> against Azurite, each test in a container of its own.</summary>
public sealed class AzureBlobImageStoreTests(RedisServer redis, AzuriteServer azurite) : ImageStoreTests(redis), IClassFixture<AzuriteServer>
{
    protected override Dictionary<string, string?> NewStore() => new()
    {
        ["Images:Store"] = "AzureBlob",
        ["Images:AzureBlob:ConnectionString"] = azurite.ConnectionString,
        ["Images:AzureBlob:Container"] = "t" + Guid.NewGuid().ToString("N")[..20],
    };

    protected override async Task<bool> HoldsAsync(Dictionary<string, string?> store, string id, int index)
    {
        var container = new Azure.Storage.Blobs.BlobContainerClient(azurite.ConnectionString, store["Images:AzureBlob:Container"]);
        return (await container.GetBlobClient($"{id}/{index}").ExistsAsync(Ct)).Value;
    }

    [Fact]
    public async Task SasLinks_LoadStraightFromBlobStorage_InAnImgOfAPage_AndATamperedOneFails()
    {
        var store = NewStore();
        store["Images:AzureBlob:SasLinks"] = "true";
        await using var harness = await GatewayHarness.StartAsync(Redis, settings: With(store));
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "straight from storage" });
        await client.WaitUntilDoneAsync(id);
        var falBytes = harness.Fal.FileBytes(harness.Fal.FilesOf(id).Single());

        var url = ImageUrls(await WaitForImageCopyAsync(client, id, "stored")).Single();
        var query = System.Web.HttpUtility.ParseQueryString(new Uri(url).Query);
        var signature = query["sig"]!;
        var tampered = url.Replace(Uri.EscapeDataString(signature), Uri.EscapeDataString((signature[0] == 'A' ? "B" : "A") + signature[1..]), StringComparison.Ordinal);
        using var anonymous = new HttpClient();
        using var direct = await anonymous.GetAsync(url, Ct);
        using var refused = await anonymous.GetAsync(tampered, Ct);
        var page = await ImagesInChromiumAsync(new Dictionary<string, string> { ["signed"] = url, ["tampered"] = tampered });

        Assert.StartsWith($"{azurite.BlobEndpoint}/{store["Images:AzureBlob:Container"]}/{id}/0?", url, StringComparison.Ordinal);
        Assert.Equal("r", query["sp"]); // read only
        Assert.True(DateTimeOffset.Parse(query["se"]!, System.Globalization.CultureInfo.InvariantCulture) <= DateTimeOffset.UtcNow + LinkTickets.Lifetime + TimeSpan.FromMinutes(1));
        Assert.Equal(HttpStatusCode.OK, direct.StatusCode);
        Assert.Equal(falBytes, await direct.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal("image/png", direct.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.True(page["images"]!["signed"]!["loaded"]!.GetValue<bool>(), page.ToJsonString());
        Assert.False(page["images"]!["tampered"]!["loaded"]!.GetValue<bool>(), page.ToJsonString());
    }
}
