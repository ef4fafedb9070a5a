using System.Globalization;
using System.Net;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests.Process;

[Collection(nameof(GatewayProcesses))]
public sealed class PublishedBuildTests(RedisServer redis, PublishedGateway published) : IClassFixture<PublishedGateway>
{
    /// <summary>ASP.NET Core's http.server.request.duration, as the OpenTelemetry Prometheus exporter names it: every request counts.</summary>
    private const string Requests = "http_server_request_duration_seconds_count";

    /// <summary>The gateway's own meter: calls to fal by operation and outcome.</summary>
    private const string FalCalls = "gateway_fal_call_duration_seconds_count";

    [Fact]
    public async Task PublishedBuild_StartsAndServes()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var world = await ProcessHarness.StartAsync(redis, published.Dll, webhooks: true);
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

    /// <summary>Even in Development, a build without the stand-in cannot honour Fal__UseEmulator: it stops and says so.</summary>
    [Fact]
    public async Task PublishedBuild_AskedForTheStandIn_ExitsNamingFalUseEmulator()
    {
        using var gateway = ProcessGateway.Start(published.Dll, new Dictionary<string, string>
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
