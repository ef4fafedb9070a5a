using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests.Process;

[Collection(nameof(GatewayProcesses))]
public sealed class PublishedBuildTests(RedisServer redis, PublishedGateway published)
{
    /// <summary>ASP.NET Core's http.server.request.duration, as the OpenTelemetry Prometheus exporter names it: every request counts.</summary>
    private const string Requests = "http_server_request_duration_seconds_count";

    /// <summary>The gateway's own meter: calls to fal by operation and outcome.</summary>
    private const string FalCalls = "gateway_fal_call_duration_seconds_count";

    [Fact]
    public async Task PublishedBuild_StartsAndServes()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var world = await ProcessHarness.StartAsync(redis, published.Executable, webhooks: true);
        using var client = world.Client();

        using var submit = await client.PostJsonAsync("/v1/generations", new { prompt = "a published lighthouse" });
        var accepted = await submit.JsonAsync();
        Assert.True(submit.StatusCode == HttpStatusCode.Accepted, $"submit answered {(int)submit.StatusCode}: {accepted}{world.Describe()}");
        var id = accepted["id"]!.GetValue<string>();
        await client.WaitUntilDoneAsync(id);
        using var result = await client.GetAsync($"/v1/generations/{id}/result", ct);
        var images = (await result.JsonAsync())["images"]!.AsArray();
        Assert.Equal(HttpStatusCode.OK, result.StatusCode);
        Assert.NotEmpty(images);
        Assert.StartsWith("http", images[0]!["url"]!.GetValue<string>(), StringComparison.Ordinal);

        // The exporter keeps a scrape for 300 ms: scrape until the series show, then until they move.
        using var metrics = world.Client(key: null);
        var first = await ScrapeUntilAsync(metrics, world, text => Sum(text, Requests) > 0 && Sum(text, FalCalls) > 0);
        foreach (var name in new[] { Requests, FalCalls, "gateway_cache_lookups_total", "gateway_generations_in_flight" })
        {
            Assert.True(first.Contains(name, StringComparison.Ordinal), $"/metrics has no {name}:\n{Excerpt(first)}");
        }

        foreach (var _ in Enumerable.Range(0, 3))
        {
            using var status = await client.GetAsync($"/v1/generations/{id}/status", ct);
            Assert.Equal(HttpStatusCode.OK, status.StatusCode);
        }

        await client.SubmitAsync(new { prompt = "a second lighthouse" });
        var second = await ScrapeUntilAsync(metrics, world, text => Sum(text, Requests) > Sum(first, Requests) && Sum(text, FalCalls) > Sum(first, FalCalls));
        Assert.True(Sum(second, Requests) > Sum(first, Requests) && Sum(second, FalCalls) > Sum(first, FalCalls),
            $"the series did not move: {Requests} {Sum(first, Requests)} then {Sum(second, Requests)}, {FalCalls} {Sum(first, FalCalls)} then {Sum(second, FalCalls)}");

        Assert.DoesNotContain(world.FalKey, world.Gateway.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(ProcessHarness.ClientKey, world.Gateway.Output, StringComparison.Ordinal);

        // It ran with the runtime settings the image's stage sets (the GC's gen0 budget, glibc's arenas).
        var image = ProcessGateway.ImageRuntimeEnvironment;
        Assert.Contains("DOTNET_GCgen0size", image.Keys);
        Assert.Contains("MALLOC_ARENA_MAX", image.Keys);
        Assert.Contains("MALLOC_MMAP_THRESHOLD_", image.Keys);
        var environment = (await File.ReadAllTextAsync($"/proc/{world.Gateway.ProcessId}/environ", ct)).Split('\0');
        foreach (var (name, value) in image)
        {
            Assert.Contains($"{name}={value}", environment);
        }
    }

    [Fact]
    public void PublishedBuild_CarriesNoFalStandInAndNoSkiaSharp()
    {
        var files = Directory.EnumerateFiles(published.OutputDirectory, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(published.OutputDirectory, f))
            .ToList();
        Assert.Contains("Gateway.dll", files);
        var standIn = files.Where(f => Path.GetFileName(f) is var name
            && (name.StartsWith("FalEmulator", StringComparison.OrdinalIgnoreCase) || name.Contains("SkiaSharp", StringComparison.OrdinalIgnoreCase)))
            .ToList();
        Assert.True(standIn.Count == 0, $"the Release publish ships the stand-in or SkiaSharp: {string.Join(", ", standIn)}");

        var dependencies = File.ReadAllText(Path.Combine(published.OutputDirectory, "Gateway.deps.json"));
        Assert.DoesNotContain("FalEmulator", dependencies, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("SkiaSharp", dependencies, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// What the image holds is its own runtime, trimmed (Gateway.csproj, issue 13): an executable, the runtime beside it,
    /// a framework smaller than the shared one, and the feature switches trimming would flip as the tested build has them.
    /// </summary>
    [Fact]
    public void PublishedBuild_IsSelfContainedAndTrimmed()
    {
        var output = published.OutputDirectory;
        Assert.True(File.Exists(published.Executable), $"no executable {published.Executable}: the image's entry point is ./Gateway");
        Assert.True(File.Exists(Path.Combine(output, "libcoreclr.so")), "the publish carries no runtime: it is not self-contained");

        var options = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "Gateway.runtimeconfig.json")))!["runtimeOptions"]!;
        Assert.True(options["framework"] is null && options["frameworks"] is null, $"the publish asks for a shared framework: {options}");
        var switches = options["configProperties"]!;
        Assert.True(switches["System.Text.Json.JsonSerializer.IsReflectionEnabledByDefault"]?.GetValue<bool>() == true, switches.ToJsonString());
        Assert.True(switches["System.GC.ConserveMemory"]?.GetValue<int>() == 7, switches.ToJsonString());

        // The shared framework's CoreLib (the one this test runs on) carries ReadyToRun code and all of its API.
        var shared = new FileInfo(typeof(object).Assembly.Location).Length;
        var shipped = new FileInfo(Path.Combine(output, "System.Private.CoreLib.dll")).Length;
        Assert.True(shipped < shared / 2, $"System.Private.CoreLib.dll is {shipped:N0} bytes, the shared one {shared:N0}: the publish is not trimmed");
    }

    /// <summary>Swashbuckle reads the gateway's types by reflection: the trimmed build serves the committed document, byte for byte in meaning.</summary>
    [Fact]
    public async Task PublishedBuild_ServesTheCommittedOpenApiDocumentAndItsPage()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var world = await ProcessHarness.StartAsync(redis, published.Executable, settings: new Dictionary<string, string> { ["Gateway__SwaggerEnabled"] = "true" });
        using var anonymous = world.Client(key: null);

        using var document = await anonymous.GetAsync("/swagger/v1/swagger.json", ct);
        Assert.True(document.StatusCode == HttpStatusCode.OK, $"{(int)document.StatusCode}{world.Describe()}");
        var served = JsonNode.Parse(await document.Content.ReadAsStringAsync(ct));
        var committed = JsonNode.Parse(await File.ReadAllTextAsync(OpenApiContract.CommittedPath, ct));
        var differences = OpenApiDocumentTests.Differences(committed, served, "").Take(25).ToList();
        Assert.True(differences.Count == 0, "the published build serves another OpenAPI document (committed → served):\n  " + string.Join("\n  ", differences));

        using var page = await anonymous.GetAsync("/swagger/index.html", ct);
        var html = await page.Content.ReadAsStringAsync(ct);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("swagger-ui", html, StringComparison.Ordinal);
        using var script = await anonymous.GetAsync("/swagger/swagger-ui-bundle.js", ct);
        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
    }

    /// <summary>
    /// The company's access tokens (JWT bearer: discovery, JWKS, RS256, by Microsoft.IdentityModel, which is trimmed) and
    /// bad input in the trimmed build: a token submits, a tampered one is 401, an invalid body is a problem naming the field,
    /// and a setting out of range stops the process naming it (DataAnnotations over a TimeSpan, by reflection).
    /// </summary>
    [Fact]
    public async Task PublishedBuild_TakesAccessTokens_AndAnswersBadInputAndBadSettingsByName()
    {
        var ct = TestContext.Current.CancellationToken;
        const string App = "11111111-aaaa-4aaa-8aaa-published0001";
        await using var issuer = await TestOidcIssuer.StartAsync();
        var settings = issuer.Settings(("Clients:process:AppIds:0", App))
            .ToDictionary(s => s.Key.Replace(":", "__", StringComparison.Ordinal), s => s.Value!);
        await using var world = await ProcessHarness.StartAsync(redis, published.Executable, settings: settings);

        using var user = world.Client(key: null);
        user.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", issuer.Token(App, "oid-ada"));
        using var submit = await user.PostJsonAsync("/v1/generations", new { prompt = "a token's lighthouse" });
        var accepted = await submit.JsonAsync();
        Assert.True(submit.StatusCode == HttpStatusCode.Accepted, $"{(int)submit.StatusCode} {accepted}{world.Describe()}");
        await user.WaitUntilDoneAsync(accepted["id"]!.GetValue<string>());

        var token = issuer.Token(App, "oid-ada");
        using var tampered = world.Client(key: null);
        tampered.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token[..^4] + (token.EndsWith("AAAA", StringComparison.Ordinal) ? "BBBB" : "AAAA"));
        using var refused = await tampered.PostJsonAsync("/v1/generations", new { prompt = "x" });
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal("urn:mai-image-gateway:problem:unauthorized", (await refused.JsonAsync())["type"]!.GetValue<string>());

        using var invalid = await user.PostAsync("/v1/generations",
            new StringContent("""{"prompt":"x","num_images":99}""", Encoding.UTF8, "application/json"), ct);
        var problem = await invalid.JsonAsync();
        Assert.True(invalid.StatusCode == HttpStatusCode.BadRequest, $"{(int)invalid.StatusCode} {problem}");
        Assert.Equal("application/problem+json", invalid.Content.Headers.ContentType?.MediaType);
        Assert.Contains("num_images", problem.ToJsonString(), StringComparison.Ordinal);

        using var misconfigured = ProcessGateway.Start(published.Executable, new Dictionary<string, string>
        {
            ["ConnectionStrings__Redis"] = world.RedisConnectionString,
            ["Fal__Key"] = world.FalKey,
            ["Clients__process__KeySha256"] = GatewayHarness.Sha256(ProcessHarness.ClientKey),
            ["Gateway__StatusCacheTtl"] = "00:05:00",
        });
        Assert.True(await misconfigured.WaitForExitAsync(TimeSpan.FromSeconds(60)), $"the gateway did not stop:\n{misconfigured.Output}");
        Assert.True(misconfigured.ExitCode == 1, $"the gateway exited with {misconfigured.ExitCode}:\n{misconfigured.Output}");
        Assert.Contains("Gateway__StatusCacheTtl", misconfigured.Output, StringComparison.Ordinal);
    }

    /// <summary>fal's official client (tests/FalClient under node --test) through the trimmed build's proxy route (YARP's forwarder, trimmed).</summary>
    [Fact]
    public async Task PublishedBuild_PassesTheOfficialFalClientSuite()
    {
        var folder = NodeTools.Folder("FalClient");
        await NodeTools.PrepareAsync(folder, Path.Combine("@fal-ai", "client", "package.json"));
        const string OtherKey = "process-other-key-58c1d0e2-secret";
        await using var world = await ProcessHarness.StartAsync(redis, published.Executable, emulator: e => e.RunTime = TimeSpan.FromMilliseconds(300),
            settings: new Dictionary<string, string>
            {
                ["Clients__other__KeySha256"] = GatewayHarness.Sha256(OtherKey),
                ["Clients__other__RequestsPerMinute"] = "1000000",
                ["Clients__other__MaxConcurrent"] = "1000",
            });
        var environment = new Dictionary<string, string?>
        {
            ["FAL_PROXY_URL"] = new Uri(world.Gateway.BaseAddress, "/api/fal/proxy").ToString(),
            ["CLIENT_KEY"] = ProcessHarness.ClientKey,
            ["OTHER_CLIENT_KEY"] = OtherKey,
            ["FAL_KEY"] = null,
            ["FAL_KEY_ID"] = null,
            ["FAL_KEY_SECRET"] = null,
            ["NODE_OPTIONS"] = null,
        };

        var (exit, output) = await NodeTools.RunAsync("node", ["--test", "--test-reporter=spec"], folder, environment, TimeSpan.FromMinutes(4));

        Assert.True(exit == 0, $"node --test in tests/FalClient failed against the published build ({exit}):\n{output}{world.Describe()}");
        Assert.True(world.Fal.State.AcceptedSubmitCount > 0, output);
    }

    /// <summary>
    /// The image store on Azure Blob Storage (Azure.Storage.Blobs, a trimmed package) in the trimmed build, against Azurite:
    /// a generation's images are copied into the container, its SAS links load them straight from blob storage, and the
    /// gateway's image route answers them too.
    /// </summary>
    [Fact]
    public async Task PublishedBuild_KeepsImagesInAzureBlobStorage()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var azurite = new AzuriteServer();
        await azurite.InitializeAsync();
        var container = "p" + Guid.NewGuid().ToString("N")[..20];
        await using var world = await ProcessHarness.StartAsync(redis, published.Executable, settings: new Dictionary<string, string>
        {
            ["Images__Store"] = "AzureBlob",
            ["Images__AzureBlob__ConnectionString"] = azurite.ConnectionString,
            ["Images__AzureBlob__Container"] = container,
            ["Images__AzureBlob__SasLinks"] = "true",
        });
        using var client = world.Client();

        var id = await client.SubmitAsync(new { prompt = "a lighthouse kept in blob storage" });
        var generation = await Images.ImageStoreTests.WaitForImageCopyAsync(client, id, "stored");
        var url = Images.ImageStoreTests.ImageUrls(generation).Single();
        Assert.StartsWith($"{azurite.BlobEndpoint}/{container}/{id}/0?", url, StringComparison.Ordinal);

        using var anonymous = new HttpClient();
        using var image = await anonymous.GetAsync(url, ct);
        var bytes = await image.Content.ReadAsByteArrayAsync(ct);
        Assert.True(image.StatusCode == HttpStatusCode.OK, $"the stored image's link answered {(int)image.StatusCode}{world.Describe()}");
        Assert.True(bytes.AsSpan().StartsWith((byte[])[0x89, (byte)'P', (byte)'N', (byte)'G']), "the stored image is not a PNG");
        var blob = new Azure.Storage.Blobs.BlobContainerClient(azurite.ConnectionString, container).GetBlobClient($"{id}/0");
        Assert.True((await blob.ExistsAsync(ct)).Value, $"no blob {id}/0 in {container}");

        // The gateway's own image route, with the caller's key, answers the same bytes.
        using var served = await client.GetAsync($"/v1/generations/{id}/images/0", ct);
        Assert.True(served.StatusCode == HttpStatusCode.OK, $"the gateway's image route answered {(int)served.StatusCode}{world.Describe()}");
        Assert.Equal(bytes, await served.Content.ReadAsByteArrayAsync(ct));
    }

    /// <summary>
    /// With its output in a file (as the throughput benchmark runs it, through a shell), the process still gets every
    /// setting, also those whose names a shell cannot hold (a Serilog override names a category with dots).
    /// </summary>
    [Fact]
    public async Task PublishedBuild_WithItsOutputInAFile_GetsSettingsWithDotsInTheirNames()
    {
        var ct = TestContext.Current.CancellationToken;
        var directory = Directory.CreateTempSubdirectory("gateway-output-");
        try
        {
            using var gateway = ProcessGateway.Start(published.Executable, new Dictionary<string, string>
            {
                ["ConnectionStrings__Redis"] = redis.ConnectionString,
                ["Fal__Key"] = "output-file-test:secret",
                ["Clients__process__KeySha256"] = GatewayHarness.Sha256(ProcessHarness.ClientKey),
                // Readiness needs "Now listening on …", which only the Microsoft.Hosting.Lifetime override lets through here.
                ["Serilog__MinimumLevel__Default"] = "Warning",
                ["Serilog__MinimumLevel__Override__Gateway.Hosting"] = "Error",
            }, outputFile: Path.Combine(directory.FullName, "gateway.log"));
            await gateway.WaitUntilReadyAsync(TimeSpan.FromSeconds(60), ct);

            var environment = (await File.ReadAllTextAsync($"/proc/{gateway.ProcessId}/environ", ct)).Split('\0');
            Assert.Contains("Serilog__MinimumLevel__Override__Microsoft.Hosting.Lifetime=Information", environment);
            Assert.Contains("Serilog__MinimumLevel__Override__Gateway.Hosting=Error", environment);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>Even in Development, a build without the stand-in cannot honour Fal__UseEmulator: it stops and says so.</summary>
    [Fact]
    public async Task PublishedBuild_AskedForTheStandIn_ExitsNamingFalUseEmulator()
    {
        using var gateway = ProcessGateway.Start(published.Executable, new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Development",
            ["Fal__UseEmulator"] = "true",
        });
        Assert.True(await gateway.WaitForExitAsync(TimeSpan.FromSeconds(60)), $"the gateway did not stop:\n{gateway.Output}");
        Assert.True(gateway.ExitCode == 1, $"the gateway exited with {gateway.ExitCode}:\n{gateway.Output}");
        Assert.Contains("The gateway cannot start: its configuration is not valid.", gateway.Output, StringComparison.Ordinal);
        Assert.Contains("Fal__UseEmulator=true, but this build of the gateway carries no fal stand-in", gateway.Output, StringComparison.Ordinal);
    }

    private static async Task<string> ScrapeUntilAsync(HttpClient client, ProcessHarness world, Func<string, bool> done)
    {
        var text = await ScrapeAsync(client, world);
        for (var i = 0; i < 100 && !done(text); i++)
        {
            await Task.Delay(100, TestContext.Current.CancellationToken);
            text = await ScrapeAsync(client, world);
        }

        return text;
    }

    private static async Task<string> ScrapeAsync(HttpClient client, ProcessHarness world)
    {
        using var response = await client.GetAsync("/metrics", TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"/metrics answered {(int)response.StatusCode}: {text[..Math.Min(text.Length, 500)]}{world.Describe()}");
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("# TYPE ", text, StringComparison.Ordinal);
        return text;
    }

    /// <summary>The sum of every sample of <paramref name="name"/> (all label sets) in Prometheus text format.</summary>
    internal static double Sum(string exposition, string name) =>
        exposition.Split('\n')
            .Where(line => line.StartsWith(name, StringComparison.Ordinal) && line.Length > name.Length && line[name.Length] is '{' or ' ')
            .Sum(line => double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));

    private static string Excerpt(string exposition) =>
        string.Join('\n', exposition.Split('\n').Where(l => l.StartsWith("# TYPE", StringComparison.Ordinal)).Take(60));
}
