using System.Globalization;
using System.Net;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests.Process;

[Collection(nameof(GatewayProcesses))]
public sealed class PublishedBuildTests(RedisServer redis, PublishedGateway published) : IClassFixture<PublishedGateway>
{
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

        using var metrics = world.Client(key: null);
        var first = await ScrapeAsync(metrics, world);
        foreach (var _ in Enumerable.Range(0, 3))
        {
            using var status = await client.GetAsync($"/v1/generations/{id}/status", ct);
            Assert.Equal(HttpStatusCode.OK, status.StatusCode);
        }

        var second = await ScrapeAsync(metrics, world);
        const string requests = "http_server_request_duration_seconds_count";
        Assert.True(Sum(second, requests) > Sum(first, requests),
            $"{requests} did not grow after 3 requests: {Sum(first, requests)} then {Sum(second, requests)}\n{Excerpt(second)}");

        Assert.DoesNotContain(world.FalKey, world.Gateway.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(ProcessHarness.ClientKey, world.Gateway.Output, StringComparison.Ordinal);
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
