using System.Net;
using System.Text.RegularExpressions;
using Gateway.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Gateway.Tests;

public sealed partial class ObservabilityTests(RedisServer redis)
{
    [Fact]
    public async Task Metrics_ExposeRequestsFalCallsCacheAndGenerations_AndTheyMove()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var client = harness.Client();
        var anonymous = harness.Client(key: null);
        var id = await client.SubmitAsync(new { prompt = "measured" });
        await client.WaitUntilDoneAsync(id);
        using (await client.GetAsync($"/v1/generations/{id}/result", TestContext.Current.CancellationToken))
        {
        }

        // The exporter keeps a scrape for 300 ms: wait for the series to show.
        var first = await ScrapeAsync(anonymous);
        for (var i = 0; i < 100 && !(RouteSeries().IsMatch(first) && FalSubmitSeries().IsMatch(first) && first.Contains("gateway_cache_lookups_total", StringComparison.Ordinal)); i++)
        {
            await Task.Delay(100, TestContext.Current.CancellationToken);
            first = await ScrapeAsync(anonymous);
        }

        Assert.Contains("# TYPE http_server_request_duration_seconds histogram", first, StringComparison.Ordinal);
        Assert.True(RouteSeries().IsMatch(first), string.Join("\n", first.Split('\n').Where(l => l.Contains("request_duration_seconds_count", StringComparison.Ordinal) || l.StartsWith("gateway_", StringComparison.Ordinal)).Take(30)));
        Assert.Contains("gateway_fal_call_duration_seconds_bucket", first, StringComparison.Ordinal);
        Assert.Matches(FalSubmitSeries(), first);
        Assert.Contains("# TYPE gateway_cache_lookups_total counter", first, StringComparison.Ordinal);
        Assert.Contains("gateway_generations_in_flight", first, StringComparison.Ordinal);
        Assert.Contains("# TYPE gateway_client_submits_total counter", first, StringComparison.Ordinal);
        Assert.DoesNotContain("gateway_gateway_", first, StringComparison.Ordinal);

        var before = Count(first);
        await client.SubmitAsync(new { prompt = "again" });
        var after = 0.0;
        for (var i = 0; i < 50 && after <= before; i++)
        {
            await Task.Delay(100, TestContext.Current.CancellationToken);
            after = Count(await ScrapeAsync(anonymous));
        }

        Assert.True(after > before, $"the submit count moved from {before} (got {after})");
        Assert.DoesNotContain(harness.FalKey, first, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Traces_PropagateTraceparentToFal_AndCarryFalsRequestId()
    {
        using var spans = new RequestSpans();

        await using var harness = await GatewayHarness.StartAsync(redis);
        var id = await harness.Client().SubmitAsync(new { prompt = "traced" });

        var submit = harness.Fal.Requests.Single(r => r.Method == "POST");
        Assert.Matches(Traceparent(), submit.Headers["traceparent"]);
        var ended = spans.Ended;
        var span = Assert.Single(ended, s => s.GetTagItem("fal.request_id") as string == id);
        Assert.Equal(span.TraceId.ToString(), submit.Headers["traceparent"].Split('-')[1]);
    }

    [Fact]
    public async Task Draining_ReadinessIs503_NewStreamsAreRefused_OpenStreamsEndWithARetryHint_AndWorkStillCompletes()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(20),
            settings: new Dictionary<string, string?> { ["Gateway:ShutdownDrainDelay"] = "00:00:03" });
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "long" });
        using var stream = await client.GetAsync($"/v1/generations/{id}/events", HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        var reader = new ServerSentEventReader(await stream.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken));
        Assert.Equal("status", (await reader.NextAsync(TestContext.Current.CancellationToken))!.Event);

        var lifetime = harness.Services.GetRequiredService<IHostApplicationLifetime>();
        var stopping = Task.Run(lifetime.StopApplication, TestContext.Current.CancellationToken);

        Assert.Null(await reader.NextAsync(TestContext.Current.CancellationToken)); // the open stream ends…
        Assert.Contains("500", reader.RetryHints); // …telling the client to come back soon

        using var ready = await client.GetAsync("/health/ready", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        using var refused = await client.GetAsync($"/v1/generations/{id}/events", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter);

        // Still serving while it drains: a submit is accepted and recorded.
        var late = await client.SubmitAsync(new { prompt = "during drain" });
        using var status = await client.GetAsync($"/v1/generations/{late}/status", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, status.StatusCode);
        await stopping;
    }

    private static async Task<string> ScrapeAsync(HttpClient client)
    {
        using var response = await client.GetAsync("/metrics", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType!.MediaType, StringComparison.Ordinal);
        return await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
    }

    private static double Count(string metrics) => FalSubmitCount().Matches(metrics)
        .Sum(m => double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));

    [GeneratedRegex("""http_server_request_duration_seconds_count\{[^}]*http_response_status_code="200",http_route="/v1/generations/\{id\}/status"[^}]*\}""")]
    private static partial Regex RouteSeries();

    [GeneratedRegex("""gateway_fal_call_duration_seconds_count\{[^}]*operation="submit"[^}]*\} """)]
    private static partial Regex FalSubmitSeries();

    [GeneratedRegex("""gateway_fal_call_duration_seconds_count\{[^}]*operation="submit"[^}]*\} ([0-9.e+]+)""")]
    private static partial Regex FalSubmitCount();

    [GeneratedRegex("^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$")]
    private static partial Regex Traceparent();
}
