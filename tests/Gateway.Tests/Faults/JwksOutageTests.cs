using System.Diagnostics;
using System.Net;
using System.Text;
using Gateway.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using NSec.Cryptography;

namespace Gateway.Tests.Faults;

/// <summary>
/// Issue 9, point 2: fal's JWKS URL failing must not turn webhooks into a denial of service. A webhook
/// that cannot be verified now answers within 2 s with 503 + Retry-After (fal redelivers for 2 hours), and
/// the JWKS URL gets at most one attempt per <c>Webhooks:JwksRefetchInterval</c>, failed or not.
/// </summary>
public sealed class JwksOutageTests(RedisServer redis) : JwksTestBase
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(2);

    [Fact]
    public async Task SignedDelivery_WhileJwksAnswers503_Is503WithRetryAfter_Within2s()
    {
        Jwks.FailWith(HttpStatusCode.ServiceUnavailable);
        await using var harness = await StartAsync();
        var id = await harness.Client().SubmitAsync(new { prompt = "jwks down" });

        var (response, elapsed) = await DeliverAsync(harness, id, SigningKey, DateTimeOffset.UtcNow);

        await AssertUnavailableAsync(response, elapsed);
        Assert.Equal(1, Jwks.Fetches);
        await AssertNotCompletedAsync(harness, id);
    }

    [Fact]
    public async Task TwentyConcurrentDeliveries_WhileJwksAnswers503_Each503Within2s_AndShareOneFetch()
    {
        Jwks.FailWith(HttpStatusCode.ServiceUnavailable);
        await using var harness = await StartAsync();
        var id = await harness.Client().SubmitAsync(new { prompt = "jwks down, many" });

        using var client = harness.Client(key: null);
        var answers = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => DeliverAsync(harness, id, SigningKey, DateTimeOffset.UtcNow, client)));

        foreach (var (response, elapsed) in answers)
        {
            await AssertUnavailableAsync(response, elapsed);
        }

        Assert.Equal(1, Jwks.Fetches);
        await AssertNotCompletedAsync(harness, id);
    }

    [Fact]
    public async Task SignedDelivery_WhileJwksHangs_Is503Within2s_AndConcurrentOnesShareTheAttempt()
    {
        Jwks.Stall();
        await using var harness = await StartAsync();
        var id = await harness.Client().SubmitAsync(new { prompt = "jwks hangs" });

        using var client = harness.Client(key: null);
        var answers = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => DeliverAsync(harness, id, SigningKey, DateTimeOffset.UtcNow, client)));

        foreach (var (response, elapsed) in answers)
        {
            await AssertUnavailableAsync(response, elapsed);
        }

        Assert.Equal(1, Jwks.Fetches);
    }

    [Fact]
    public async Task FailedFetch_IsRememberedForTheRefetchInterval_ThenTheNextAttemptSucceeds()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        Jwks.FailWith(HttpStatusCode.ServiceUnavailable);
        await using var harness = await StartAsync(time);
        var id = await harness.Client().SubmitAsync(new { prompt = "jwks comes back" });

        var (first, elapsed) = await DeliverAsync(harness, id, SigningKey, time.GetUtcNow());
        await AssertUnavailableAsync(first, elapsed);
        Assert.Equal(1, Jwks.Fetches);

        // The keys are back, but the failure is remembered until the interval has passed: no second attempt yet.
        Jwks.Recover();
        time.Advance(TimeSpan.FromSeconds(59));
        var (early, earlyElapsed) = await DeliverAsync(harness, id, SigningKey, time.GetUtcNow());
        await AssertUnavailableAsync(early, earlyElapsed);
        Assert.Equal(1, Jwks.Fetches);

        time.Advance(TimeSpan.FromSeconds(2));
        var (ok, _) = await DeliverAsync(harness, id, SigningKey, time.GetUtcNow());
        using (ok)
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Equal("COMPLETED", (await ok.JsonAsync())["status"]!.GetValue<string>());
        }

        Assert.Equal(2, Jwks.Fetches);

        // fal redelivers: still idempotent, and the cached keys serve it without another fetch.
        var (again, _) = await DeliverAsync(harness, id, SigningKey, time.GetUtcNow());
        using (again)
        {
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        }

        Assert.Equal(2, Jwks.Fetches);
    }

    [Fact]
    public async Task BadSignature_WithKeysCached_StaysUnauthorized_WhileJwksIsDown_AndGoodOnesStillVerify()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var harness = await StartAsync(time);
        var id = await harness.Client().SubmitAsync(new { prompt = "forged during outage" });
        using var stranger = TestJwksServer.NewKey();

        var (forged, _) = await DeliverAsync(harness, id, stranger, time.GetUtcNow());
        await AssertRefusedAsync(forged, HttpStatusCode.Unauthorized, "webhook-badsignature");
        Assert.Equal(1, Jwks.Fetches); // the first fetch; the refetch for the unknown key is not due yet

        Jwks.FailWith(HttpStatusCode.ServiceUnavailable);
        time.Advance(TimeSpan.FromSeconds(61));
        var (forgedAgain, elapsed) = await DeliverAsync(harness, id, stranger, time.GetUtcNow());
        Assert.True(elapsed <= Budget, $"a forged delivery during the outage took {elapsed.TotalMilliseconds:F0} ms");
        await AssertRefusedAsync(forgedAgain, HttpStatusCode.Unauthorized, "webhook-badsignature");
        Assert.Equal(2, Jwks.Fetches); // one refetch attempt, failed: the cached keys stay in use

        var (genuine, _) = await DeliverAsync(harness, id, SigningKey, time.GetUtcNow());
        using (genuine)
        {
            Assert.Equal(HttpStatusCode.OK, genuine.StatusCode);
        }

        Assert.Equal(2, Jwks.Fetches);
    }

    /// <summary>A gateway whose JWKS is the test's, and whose own polling stays out of the way.</summary>
    private async Task<GatewayHarness> StartAsync(TimeProvider? time = null)
    {
        var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(30), settings: new Dictionary<string, string?>
        {
            ["Fal:JwksUrl"] = Jwks.Url,
            ["Webhooks:JwksRefetchInterval"] = "00:01:00",
            ["Gateway:ReconcileMinDelay"] = "00:05:00",
            ["Gateway:ReconcileMaxDelay"] = "00:10:00",
        }, services: time is null ? null : FakeTime.Use(time));
        await WebhookBodyLimitTests.WarmUpAsync(harness);
        return harness;
    }

    private static async Task<(HttpResponseMessage Response, TimeSpan Elapsed)> DeliverAsync(
        GatewayHarness harness, string id, Key key, DateTimeOffset at, HttpClient? client = null)
    {
        var body = Encoding.UTF8.GetBytes(
            $$$"""{"request_id":"{{{id}}}","status":"OK","payload":{"images":[{"url":"https://v3.fal.media/files/x/out.png","content_type":"image/png"}],"description":"after the outage"}}""");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/webhooks/fal") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new("application/json");
        foreach (var (name, value) in TestJwksServer.Sign(key, id, body, at))
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using var own = client is null ? harness.Client(key: null) : null;
        var clock = Stopwatch.StartNew();
        var response = await (client ?? own!).SendAsync(request, TestContext.Current.CancellationToken);
        return (response, clock.Elapsed);
    }

    private static async Task AssertUnavailableAsync(HttpResponseMessage response, TimeSpan elapsed)
    {
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            Assert.True(elapsed <= Budget, $"the webhook was answered after {elapsed.TotalMilliseconds:F0} ms ({(int)response.StatusCode} {text})");
            Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable, $"expected 503, got {(int)response.StatusCode}: {text}");
            Assert.NotNull(response.Headers.RetryAfter);
            Assert.True(response.Headers.RetryAfter.Delta > TimeSpan.Zero, $"Retry-After: {response.Headers.RetryAfter}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
            Assert.Contains("\"urn:mai-image-gateway:problem:webhook-nokeys\"", text, StringComparison.Ordinal);
        }
    }

    private static async Task AssertRefusedAsync(HttpResponseMessage response, HttpStatusCode status, string slug)
    {
        using (response)
        {
            var problem = await response.JsonAsync();
            Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {problem}");
            Assert.Equal("urn:mai-image-gateway:problem:" + slug, problem["type"]!.GetValue<string>());
        }
    }

    private static async Task AssertNotCompletedAsync(GatewayHarness harness, string id)
    {
        using var status = await harness.Client().GetAsync($"/v1/generations/{id}/status", TestContext.Current.CancellationToken);
        Assert.NotEqual("COMPLETED", (await status.JsonAsync())["status"]!.GetValue<string>());
    }
}
