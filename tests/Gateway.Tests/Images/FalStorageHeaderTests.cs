using System.Net;
using FalEmulator;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests.Images;

/// <summary>
/// With an image store, fal is asked to keep its own copy of the outputs only briefly (X-Fal-Object-Lifecycle-Preference)
/// on every queue submit, from /v1 and through the proxy; Images__FalStoreIO=false also asks it to keep no payloads.
/// </summary>
public sealed class FalStorageHeaderTests(RedisServer redis)
{
    private const string Lifecycle = "X-Fal-Object-Lifecycle-Preference";

    private static Dictionary<string, string?> FileStore(params (string Key, string? Value)[] more)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Images:Store"] = "FileSystem",
            ["Images:Path"] = Directory.CreateTempSubdirectory("gateway-images-").FullName,
        };
        foreach (var (key, value) in more)
        {
            settings[key] = value;
        }

        return settings;
    }

    [Fact]
    public async Task WithAStore_V1Submits_AskFalToKeepItsCopyForFalExpiration()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: FileStore(("Images:FalExpiration", "00:20:00")));
        var id = await harness.Client().SubmitAsync(new { prompt = "a lighthouse" });
        var edit = await harness.Client().SubmitAsync(new { prompt = "bluer", image_urls = new[] { GenerationFlowTests.TinyPngDataUri() } }, "/v1/edits");

        Assert.Equal(new StoragePreferences(TimeSpan.FromMinutes(20), StoreIO: true), harness.Fal.StorageOf(id));
        Assert.Equal(new StoragePreferences(TimeSpan.FromMinutes(20), StoreIO: true), harness.Fal.StorageOf(edit));
        Assert.All(harness.Fal.Requests.Where(r => r.Method == "POST"), r => Assert.Equal("{\"expiration_duration_seconds\": 1200}", r.Headers[Lifecycle]));
    }

    [Fact]
    public async Task FalStoreIoFalse_SendsStoreIo0_FromV1AndTheProxy_WithTheGatewaysExpirationOverTheCallers()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: FileStore(("Images:FalStoreIO", "false")));
        var id = await harness.Client().SubmitAsync(new { prompt = "private" });
        using var proxied = await FalProxyTests.ProxyAsync(harness.Client(), HttpMethod.Post, "https://queue.fal.run/microsoft/mai-image-2.5",
            """{"prompt":"private too"}""", request =>
            {
                request.Headers.TryAddWithoutValidation(Lifecycle, "{\"expiration_duration_seconds\": 999999}");
                request.Headers.TryAddWithoutValidation("X-Fal-Store-IO", "1");
            });
        var proxiedId = (await proxied.JsonAsync())["request_id"]!.GetValue<string>();

        Assert.Equal(HttpStatusCode.OK, proxied.StatusCode);
        Assert.Equal(new StoragePreferences(TimeSpan.FromHours(1), StoreIO: false), harness.Fal.StorageOf(id));
        Assert.Equal(new StoragePreferences(TimeSpan.FromHours(1), StoreIO: false), harness.Fal.StorageOf(proxiedId));
        var submit = harness.Fal.Requests.Last(r => r.Method == "POST");
        Assert.Equal("{\"expiration_duration_seconds\": 3600}", submit.Headers[Lifecycle]);
        Assert.Equal("0", submit.Headers["X-Fal-Store-IO"]);
    }

    [Fact]
    public async Task WithoutAStore_SubmitsCarryNoLifecycleHeader_AndAProxiedRunNeverDoes()
    {
        await using var none = await GatewayHarness.StartAsync(redis);
        await none.Client().SubmitAsync(new { prompt = "as before" });
        Assert.All(none.Fal.Requests.Where(r => r.Method == "POST"), r => Assert.False(r.Headers.ContainsKey(Lifecycle)));

        // A synchronous run is not recorded, so nothing would copy its images: fal keeps them as its account says.
        await using var store = await GatewayHarness.StartAsync(redis, settings: FileStore(("FalProxy:AllowRun", "true")));
        using var run = await FalProxyTests.ProxyAsync(store.Client(), HttpMethod.Post, "https://fal.run/microsoft/mai-image-2.5", """{"prompt":"now"}""");
        Assert.Equal(HttpStatusCode.OK, run.StatusCode);
        var sent = Assert.Single(store.Fal.Requests, r => r.Method == "POST");
        Assert.False(sent.Headers.ContainsKey(Lifecycle), string.Join(", ", sent.Headers.Keys));
    }
}
