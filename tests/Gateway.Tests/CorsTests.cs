using System.Net;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests;

/// <summary>
/// CORS for browser frontends (issue 11): exact origins from Cors__AllowedOrigins on the /v1 routes and the proxy, the
/// caller's origin echoed (never *), the headers frontends send and read; nothing for other origins, and never on the
/// webhook, metrics or health.
/// </summary>
public sealed class CorsTests(RedisServer redis)
{
    private const string Design = "https://design.corp.example";
    private const string Vite = "http://localhost:5173";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Dictionary<string, string?> Origins() => new()
    {
        ["Cors:AllowedOrigins:0"] = Design,
        ["Cors:AllowedOrigins:1"] = Vite,
    };

    private static async Task<HttpResponseMessage> PreflightAsync(HttpClient client, string path, string origin, string method, string headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Options, path);
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", method);
        request.Headers.Add("Access-Control-Request-Headers", headers);
        return await client.SendAsync(request, Ct);
    }

    private static string Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : "";

    private static IEnumerable<string> CorsHeaders(HttpResponseMessage response) =>
        response.Headers.Select(h => h.Key).Where(k => k.StartsWith("Access-Control-", StringComparison.OrdinalIgnoreCase));

    [Theory]
    [InlineData("/v1/generations", "POST", "authorization,content-type,idempotency-key,prefer")]
    [InlineData("/v1/generations", "GET", "authorization")]
    [InlineData("/v1/generations/some-id/events", "GET", "authorization,last-event-id")]
    [InlineData("/v1/generations/some-id/cancel", "POST", "x-api-key")]
    [InlineData("/v1/generations/some-id/images/0", "GET", "authorization")]
    [InlineData("/v1/files", "POST", "authorization")]
    [InlineData("/v1/usage", "GET", "authorization")]
    [InlineData("/api/fal/proxy", "POST", "authorization,content-type,x-fal-target-url,x-fal-queue-priority,x-fal-runner-hint,x-fal-request-timeout")]
    [InlineData("/api/fal/proxy", "PUT", "authorization,content-type,x-fal-target-url,x-fal-object-lifecycle-preference")]
    public async Task Preflight_FromAnAllowedOrigin_Is204WithTheOriginTheMethodAndTheHeaders(string path, string method, string headers)
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Origins());

        using var response = await PreflightAsync(harness.Client(key: null), path, Design, method, headers);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(Design, Header(response, "Access-Control-Allow-Origin"));
        Assert.Contains("Origin", response.Headers.Vary);
        Assert.Contains(method, Header(response, "Access-Control-Allow-Methods").Split(',', StringSplitOptions.TrimEntries));
        var allowed = Header(response, "Access-Control-Allow-Headers").Split(',', StringSplitOptions.TrimEntries);
        foreach (var header in headers.Split(','))
        {
            Assert.Contains(header, allowed, StringComparer.OrdinalIgnoreCase);
        }

        Assert.Empty(harness.Fal.Requests);
    }

    [Fact]
    public async Task Preflight_ForAMethodTheRouteDoesNotHave_IsNotAllowed()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Origins());
        using var response = await PreflightAsync(harness.Client(key: null), "/v1/usage", Design, "DELETE", "authorization");
        Assert.DoesNotContain("DELETE", Header(response, "Access-Control-Allow-Methods"), StringComparison.Ordinal);
        Assert.NotEqual(HttpStatusCode.NoContent, response.StatusCode);
    }

    [Fact]
    public async Task ActualRequest_FromAnAllowedOrigin_EchoesItAndExposesTheHeadersAFrontendReads()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Origins());
        var client = harness.Client();
        client.DefaultRequestHeaders.Add("Origin", Vite);

        using var response = await client.PostJsonAsync("/v1/generations", new { prompt = "from a page" });

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal(Vite, Header(response, "Access-Control-Allow-Origin"));
        Assert.Contains("Origin", response.Headers.Vary);
        var exposed = Header(response, "Access-Control-Expose-Headers").Split(',', StringSplitOptions.TrimEntries);
        foreach (var header in new[] { "Location", "Retry-After", "RateLimit", "RateLimit-Policy", "Idempotent-Replayed", "Preference-Applied", "x-fal-request-id" })
        {
            Assert.Contains(header, exposed, StringComparer.OrdinalIgnoreCase);
        }

        Assert.NotEqual("*", Header(response, "Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task UnlistedOrigin_GetsNoAccessControlHeader_OnPreflightOrRequest()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Origins());
        using var preflight = await PreflightAsync(harness.Client(key: null), "/v1/generations", "https://evil.example", "POST", "authorization,content-type");
        Assert.Empty(CorsHeaders(preflight));

        var client = harness.Client();
        client.DefaultRequestHeaders.Add("Origin", "https://design.corp.example.evil.example");
        using var response = await client.GetAsync("/v1/usage", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(CorsHeaders(response));

        // Outside Development a loopback origin is as unlisted as any other.
        using var loopback = await PreflightAsync(harness.Client(key: null), "/v1/generations", "http://localhost:3000", "POST", "authorization");
        Assert.Empty(CorsHeaders(loopback));
    }

    [Fact]
    public async Task NoOriginsConfigured_NoCorsHeadersAtAll()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        using var preflight = await PreflightAsync(harness.Client(key: null), "/v1/generations", Design, "POST", "authorization");
        Assert.Empty(CorsHeaders(preflight));
        var client = harness.Client();
        client.DefaultRequestHeaders.Add("Origin", Design);
        using var response = await client.GetAsync("/v1/usage", Ct);
        Assert.Empty(CorsHeaders(response));
    }

    [Theory]
    [InlineData("/v1/webhooks/fal", "POST")]
    [InlineData("/metrics", "GET")]
    [InlineData("/health/live", "GET")]
    [InlineData("/health/ready", "GET")]
    public async Task WebhookMetricsAndHealth_NeverAnswerCors(string path, string method)
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Origins());
        using var preflight = await PreflightAsync(harness.Client(key: null), path, Design, method, "content-type");
        Assert.Empty(CorsHeaders(preflight));

        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        request.Headers.Add("Origin", Design);
        if (method == "POST")
        {
            request.Content = new StringContent("{}", System.Text.Encoding.UTF8, "application/json");
        }

        using var response = await harness.Client(key: null).SendAsync(request, Ct);
        Assert.Empty(CorsHeaders(response));
    }

    [Fact]
    public async Task Development_AllowsAnyLoopbackHttpOrigin_ButNoOther()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, environment: "Development");
        foreach (var origin in new[] { "http://localhost:5173", "http://127.0.0.1:8080" })
        {
            using var allowed = await PreflightAsync(harness.Client(key: null), "/v1/generations", origin, "POST", "authorization,content-type");
            Assert.Equal(origin, Header(allowed, "Access-Control-Allow-Origin"));
        }

        foreach (var origin in new[] { "https://localhost:5173", "http://localhost.evil.example", Design })
        {
            using var refused = await PreflightAsync(harness.Client(key: null), "/v1/generations", origin, "POST", "authorization");
            Assert.Empty(CorsHeaders(refused));
        }
    }
}
