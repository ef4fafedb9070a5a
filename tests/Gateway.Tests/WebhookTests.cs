using System.Net;
using System.Text;
using Gateway.Tests.Infrastructure;
using NSec.Cryptography;

namespace Gateway.Tests;

/// <summary>fal's webhook as fal documents it, signed with real Ed25519 keys the test controls.</summary>
public sealed class WebhookTests(RedisServer redis) : JwksTestBase
{
    /// <summary>A gateway whose JWKS is the test's, and whose own polling stays out of the way for a minute.</summary>
    private Task<GatewayHarness> StartAsync(Dictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Fal:JwksUrl"] = Jwks.Url,
            ["Gateway:ReconcileMinDelay"] = "00:01:00",
            ["Gateway:ReconcileMaxDelay"] = "00:02:00",
        };
        foreach (var (k, v) in extra ?? [])
        {
            settings[k] = v;
        }

        return GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(30), settings: settings);
    }

    private static async Task<HttpResponseMessage> DeliverAsync(GatewayHarness harness, byte[] body, IDictionary<string, string> headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/webhooks/fal") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new("application/json");
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return await harness.Client(key: null).SendAsync(request, TestContext.Current.CancellationToken);
    }

    private static byte[] OkBody(string id) => Encoding.UTF8.GetBytes(
        $$$"""{"request_id":"{{{id}}}","gateway_request_id":"{{{id}}}","status":"OK","payload":{"images":[{"url":"https://v3.fal.media/files/x/out.png","content_type":"image/png","width":8,"height":8}],"description":"from the webhook"}}""");

    [Fact]
    public async Task ValidWebhook_CompletesTheGenerationWithItsPayload_WithoutAskingFal()
    {
        await using var harness = await StartAsync();
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "via webhook" });
        var body = OkBody(id);

        using var response = await DeliverAsync(harness, body, TestJwksServer.Sign(SigningKey, id, body, DateTimeOffset.UtcNow));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("COMPLETED", (await response.JsonAsync())["status"]!.GetValue<string>());

        using var result = await client.GetAsync($"/v1/generations/{id}/result", TestContext.Current.CancellationToken);
        var json = await result.JsonAsync();
        Assert.Equal(HttpStatusCode.OK, result.StatusCode);
        Assert.Equal("from the webhook", json["description"]!.GetValue<string>());
        Assert.Equal(0, harness.Fal.ResultCallsFor(id));
        Assert.Contains("accepted", harness.Logs(), StringComparison.OrdinalIgnoreCase);
    }

    public static TheoryData<string> Headers => new()
    {
        "X-Fal-Webhook-Request-Id", "X-Fal-Webhook-User-Id", "X-Fal-Webhook-Timestamp", "X-Fal-Webhook-Signature",
    };

    [Theory]
    [MemberData(nameof(Headers))]
    public async Task Webhook_MissingAHeader_Is401_AndStoresNothing(string header)
    {
        await using var harness = await StartAsync();
        var id = await harness.Client().SubmitAsync(new { prompt = "x" });
        var body = OkBody(id);
        var headers = TestJwksServer.Sign(SigningKey, id, body, DateTimeOffset.UtcNow);
        headers.Remove(header);

        await AssertRefusedAsync(harness, id, await DeliverAsync(harness, body, headers), HttpStatusCode.Unauthorized, "webhook-missingheader");
    }

    [Fact]
    public async Task Webhook_BodyNotTheSignedOne_Is401_AndStoresNothing()
    {
        await using var harness = await StartAsync();
        var id = await harness.Client().SubmitAsync(new { prompt = "x" });
        var headers = TestJwksServer.Sign(SigningKey, id, OkBody(id), DateTimeOffset.UtcNow);
        var tampered = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(OkBody(id)).Replace("out.png", "evil.png", StringComparison.Ordinal));

        await AssertRefusedAsync(harness, id, await DeliverAsync(harness, tampered, headers), HttpStatusCode.Unauthorized, "webhook-badsignature");
    }

    [Theory]
    [InlineData(-301)]
    [InlineData(301)]
    public async Task Webhook_TimestampMoreThan300sAway_Is401(int seconds)
    {
        await using var harness = await StartAsync();
        var id = await harness.Client().SubmitAsync(new { prompt = "x" });
        var body = OkBody(id);
        var headers = TestJwksServer.Sign(SigningKey, id, body, DateTimeOffset.UtcNow.AddSeconds(seconds));

        await AssertRefusedAsync(harness, id, await DeliverAsync(harness, body, headers), HttpStatusCode.Unauthorized, "webhook-staletimestamp");
    }

    [Fact]
    public async Task Webhook_SignedWithAKeyTheGatewayHasNotSeen_IsAcceptedAfterOneRefetch_ButRefetchesAreRateLimited()
    {
        await using var harness = await StartAsync(new() { ["Webhooks:JwksRefetchInterval"] = "00:00:00" });
        var client = harness.Client();
        var first = await client.SubmitAsync(new { prompt = "one" });
        var body = OkBody(first);
        using (var ok = await DeliverAsync(harness, body, TestJwksServer.Sign(SigningKey, first, body, DateTimeOffset.UtcNow)))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        // fal rotates: a new key joins the set and the old one leaves.
        var rotated = TestJwksServer.NewKey();
        Jwks.Publish(rotated);
        Jwks.Withdraw(SigningKey);
        var second = await client.SubmitAsync(new { prompt = "two" });
        body = OkBody(second);
        var fetches = Jwks.Fetches;
        using var response = await DeliverAsync(harness, body, TestJwksServer.Sign(rotated, second, body, DateTimeOffset.UtcNow));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(fetches + 1, Jwks.Fetches);
    }

    [Fact]
    public async Task Webhook_ForgedSignatures_TriggerAtMostOneKeyRefetchPerInterval()
    {
        await using var harness = await StartAsync(); // default: at most one refetch a minute
        var id = await harness.Client().SubmitAsync(new { prompt = "x" });
        using var stranger = TestJwksServer.NewKey();
        var body = OkBody(id);
        for (var i = 0; i < 5; i++)
        {
            using var response = await DeliverAsync(harness, body, TestJwksServer.Sign(stranger, id, body, DateTimeOffset.UtcNow));
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }

        Assert.Equal(1, Jwks.Fetches);
    }

    [Fact]
    public async Task Webhook_ForAnUnknownRequestId_Is400_AndCounted()
    {
        await using var harness = await StartAsync();
        var id = Guid.NewGuid().ToString();
        var body = OkBody(id);
        using var response = await DeliverAsync(harness, body, TestJwksServer.Sign(SigningKey, id, body, DateTimeOffset.UtcNow));
        var problem = await response.JsonAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.EndsWith("webhook-unknowngeneration", problem["type"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("UnknownGeneration", harness.Logs(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Webhook_BodyRequestIdDiffersFromTheSignedOne_Is400()
    {
        await using var harness = await StartAsync();
        var id = await harness.Client().SubmitAsync(new { prompt = "x" });
        var other = await harness.Client().SubmitAsync(new { prompt = "y" });
        var body = OkBody(other);
        await AssertRefusedAsync(harness, other, await DeliverAsync(harness, body, TestJwksServer.Sign(SigningKey, id, body, DateTimeOffset.UtcNow)),
            HttpStatusCode.BadRequest, "webhook-requestidmismatch");
    }

    [Fact]
    public async Task DuplicateDelivery_ChangesNothing()
    {
        await using var harness = await StartAsync();
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "twice" });
        var body = OkBody(id);
        using (var first = await DeliverAsync(harness, body, TestJwksServer.Sign(SigningKey, id, body, DateTimeOffset.UtcNow)))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        using var before = await client.GetAsync($"/v1/generations/{id}", TestContext.Current.CancellationToken);
        var was = await before.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        var different = Encoding.UTF8.GetBytes($$$"""{"request_id":"{{{id}}}","status":"ERROR","error":"Invalid status code: 500","payload":{"detail":"late"}}""");
        using var second = await DeliverAsync(harness, different, TestJwksServer.Sign(SigningKey, id, different, DateTimeOffset.UtcNow));
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);

        using var after = await client.GetAsync($"/v1/generations/{id}", TestContext.Current.CancellationToken);
        Assert.Equal(was, await after.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task ErrorWebhook_MakesTheGenerationFailed_WithFalsStatusAndFieldErrors()
    {
        await using var harness = await StartAsync();
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "refused" });
        var body = Encoding.UTF8.GetBytes($$$"""{"request_id":"{{{id}}}","status":"ERROR","error":"Invalid status code: 422","payload":{"detail":[{"loc":["body","prompt"],"msg":"content policy","type":"content_policy_violation"}]}}""");
        using (var response = await DeliverAsync(harness, body, TestJwksServer.Sign(SigningKey, id, body, DateTimeOffset.UtcNow)))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        using var generation = await client.GetAsync($"/v1/generations/{id}", TestContext.Current.CancellationToken);
        var json = await generation.JsonAsync();
        Assert.Equal("FAILED", json["status"]!.GetValue<string>());
        Assert.Equal(422, json["error"]!["fal_status"]!.GetValue<int>());
        Assert.Equal("content policy", json["error"]!["errors"]!["prompt"]![0]!.GetValue<string>());
        Assert.Equal(0, harness.Fal.ResultCallsFor(id));
    }

    [Fact]
    public async Task WebhookWithoutPayload_FetchesTheResultFromFalOnce()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: new Dictionary<string, string?>
        {
            ["Fal:JwksUrl"] = Jwks.Url, ["Gateway:ReconcileMinDelay"] = "00:01:00", ["Gateway:ReconcileMaxDelay"] = "00:02:00",
        });
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "big" });
        await Task.Delay(600, TestContext.Current.CancellationToken); // done at fal
        var body = Encoding.UTF8.GetBytes($$$"""{"request_id":"{{{id}}}","status":"OK","payload":null,"payload_error":"Payload too large to serialise"}""");
        using (var response = await DeliverAsync(harness, body, TestJwksServer.Sign(SigningKey, id, body, DateTimeOffset.UtcNow)))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        using var result = await client.GetAsync($"/v1/generations/{id}/result", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, result.StatusCode);
        Assert.Equal(1, harness.Fal.ResultCallsFor(id));
    }

    private static async Task AssertRefusedAsync(GatewayHarness harness, string id, HttpResponseMessage response, HttpStatusCode status, string slug)
    {
        using (response)
        {
            var problem = await response.JsonAsync();
            Assert.Equal(status, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
            Assert.Equal("urn:mai-image-gateway:problem:" + slug, problem["type"]!.GetValue<string>());
        }

        using var status2 = await harness.Client().GetAsync($"/v1/generations/{id}/status", TestContext.Current.CancellationToken);
        Assert.NotEqual("COMPLETED", (await status2.JsonAsync())["status"]!.GetValue<string>());
    }
}
