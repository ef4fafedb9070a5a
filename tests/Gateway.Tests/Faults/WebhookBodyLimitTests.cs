using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Gateway.Tests.Infrastructure;
using NSec.Cryptography;

namespace Gateway.Tests.Faults;

/// <summary>
/// Issue 9, point 3: a webhook's signature headers are checked before its body is read, the body is hashed
/// as it streams under a size cap, and only a few bodies are read at once.
/// </summary>
public sealed class WebhookBodyLimitTests(RedisServer redis) : JwksTestBase
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(2);

    public static TheoryData<string, string> BadHeaders => new()
    {
        { "none", "webhook-missingheader" },
        { "no-signature", "webhook-missingheader" },
        { "signature-not-hex", "webhook-malformedsignature" },
        { "signature-too-short", "webhook-malformedsignature" },
        { "timestamp-not-a-number", "webhook-badtimestamp" },
        { "timestamp-stale", "webhook-staletimestamp" },
    };

    [Theory]
    [MemberData(nameof(BadHeaders))]
    public async Task BadSignatureHeaders_Are401_BeforeTheBodyArrives(string variant, string slug)
    {
        await using var harness = await StartAsync();
        var headers = ForgedHeaders(Guid.NewGuid().ToString(), DateTimeOffset.UtcNow);
        switch (variant)
        {
            case "none": headers.Clear(); break;
            case "no-signature": headers.Remove("X-Fal-Webhook-Signature"); break;
            case "signature-not-hex": headers["X-Fal-Webhook-Signature"] = new string('z', 128); break;
            case "signature-too-short": headers["X-Fal-Webhook-Signature"] = new string('a', 64); break;
            case "timestamp-not-a-number": headers["X-Fal-Webhook-Timestamp"] = "soon"; break;
            case "timestamp-stale": headers["X-Fal-Webhook-Timestamp"] = DateTimeOffset.UtcNow.AddMinutes(-10).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture); break;
        }

        // The body starts and then never ends: only a gateway that does not wait for it can answer.
        using var content = new StallingContent(length: 100L * 1024 * 1024);
        var (response, elapsed) = await PostAsync(harness, headers, content, TestContext.Current.CancellationToken);

        await AssertProblemAsync(response, HttpStatusCode.Unauthorized, slug, elapsed);
        Assert.Equal(0, Jwks.Fetches); // nothing about a malformed request is worth asking fal for keys
    }

    [Fact]
    public async Task DeclaredLengthOverMaxBodyBytes_Is413_BeforeTheBodyArrives()
    {
        await using var harness = await StartAsync(("Webhooks:MaxBodyBytes", "1048576"));
        using var content = new StallingContent(length: 100L * 1024 * 1024);

        var (response, elapsed) = await PostAsync(harness, ForgedHeaders(Guid.NewGuid().ToString(), DateTimeOffset.UtcNow), content, TestContext.Current.CancellationToken);

        await AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge, "body-too-large", elapsed);
    }

    [Fact]
    public async Task ChunkedBodyOverMaxBodyBytes_Is413_WhenTheCapIsReached()
    {
        await using var harness = await StartAsync(("Webhooks:MaxBodyBytes", "1048576"));
        using var content = new ZeroContent(3L * 1024 * 1024, chunked: true);

        var (response, _) = await PostAsync(harness, ForgedHeaders(Guid.NewGuid().ToString(), DateTimeOffset.UtcNow), content, TestContext.Current.CancellationToken);

        await AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge, "body-too-large", elapsed: null);
    }

    [Fact]
    public async Task AllBodySlotsTaken_NextDelivery_Is503WithRetryAfter_AndASlotIsFreedAfterwards()
    {
        await using var harness = await StartAsync(("Webhooks:MaxConcurrentBodies", "1"), ("Webhooks:BodySlotWait", "00:00:00.200"));
        var id = await harness.Client().SubmitAsync(new { prompt = "slots" });

        // One delivery holds the only slot with a body that does not end.
        using var holder = new StallingContent(length: null);
        using var holding = new CancellationTokenSource();
        var held = PostAsync(harness, ForgedHeaders(Guid.NewGuid().ToString(), DateTimeOffset.UtcNow), holder, holding.Token);
        await holder.Started.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        await Task.Delay(300, TestContext.Current.CancellationToken); // let the gateway take the slot

        var body = OkBody(id, "slots");
        var (busy, elapsed) = await PostAsync(harness, TestJwksServer.Sign(SigningKey, id, body, DateTimeOffset.UtcNow), Json(body), TestContext.Current.CancellationToken);
        await AssertProblemAsync(busy, HttpStatusCode.ServiceUnavailable, "webhook-busy", elapsed, retryAfter: true);

        await holding.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => held);
        await Task.Delay(200, TestContext.Current.CancellationToken); // the gateway notices the abort and frees the slot

        var (ok, _) = await PostAsync(harness, TestJwksServer.Sign(SigningKey, id, body, DateTimeOffset.UtcNow), Json(body), TestContext.Current.CancellationToken);
        using (ok)
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
    }

    [Fact]
    public async Task SignedBodyThatIsJsonButNotAnObject_Is400()
    {
        await using var harness = await StartAsync();
        var id = await harness.Client().SubmitAsync(new { prompt = "odd body" });
        var body = Encoding.UTF8.GetBytes("[1,2,3]");

        var (response, _) = await PostAsync(harness, TestJwksServer.Sign(SigningKey, id, body, DateTimeOffset.UtcNow), Json(body), TestContext.Current.CancellationToken);

        await AssertProblemAsync(response, HttpStatusCode.BadRequest, "webhook-malformedbody", elapsed: null);
    }

    [Fact]
    public async Task LargeSignedDelivery_BufferedOutsideMemory_CompletesTheGeneration()
    {
        await using var harness = await StartAsync();
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "a sync_mode-sized result" });
        // Several MB: past the in-memory part of the buffer, as sync_mode results with data URIs are.
        var image = "data:image/png;base64," + Convert.ToBase64String(new byte[6 * 1024 * 1024]);
        var body = Encoding.UTF8.GetBytes(
            $$$"""{"request_id":"{{{id}}}","status":"OK","payload":{"images":[{"url":"{{{image}}}","content_type":"image/png"}],"description":"large"}}""");

        var (response, _) = await PostAsync(harness, TestJwksServer.Sign(SigningKey, id, body, DateTimeOffset.UtcNow), Json(body), TestContext.Current.CancellationToken);
        using (response)
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        using var result = await client.GetAsync($"/v1/generations/{id}/result", TestContext.Current.CancellationToken);
        var json = await result.JsonAsync();
        Assert.Equal(HttpStatusCode.OK, result.StatusCode);
        Assert.Equal("large", json["description"]!.GetValue<string>());
        Assert.Equal(image, json["images"]![0]!["url"]!.GetValue<string>());
    }

    private async Task<GatewayHarness> StartAsync(params (string Key, string? Value)[] extra)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Fal:JwksUrl"] = Jwks.Url,
            ["Gateway:ReconcileMinDelay"] = "00:05:00",
            ["Gateway:ReconcileMaxDelay"] = "00:10:00",
        };
        foreach (var (key, value) in extra)
        {
            settings[key] = value;
        }

        var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(30), settings: settings);
        await WarmUpAsync(harness);
        return harness;
    }

    /// <summary>
    /// One unsigned POST (401, no JWKS fetch) so that the timed requests measure the webhook path, not the
    /// first request's JIT on a busy machine.
    /// </summary>
    internal static async Task WarmUpAsync(GatewayHarness harness)
    {
        using var response = await harness.Client(key: null).PostAsync("/v1/webhooks/fal", new StringContent("{}"), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    /// <summary>
    /// A client that sends <c>Expect: 100-continue</c> bodies only once the server asks for them (no 1 s
    /// fallback), so an answer given without reading the body arrives, and one that reads it sends 100 Continue.
    /// </summary>
    internal static HttpClient ExpectContinueClient(Uri gateway) =>
        new(new SocketsHttpHandler { Expect100ContinueTimeout = TimeSpan.FromMinutes(1) }) { BaseAddress = gateway, Timeout = TimeSpan.FromMinutes(2) };

    /// <summary>Well-formed signature headers whose signature no key verifies.</summary>
    internal static Dictionary<string, string> ForgedHeaders(string requestId, DateTimeOffset at) => new()
    {
        ["X-Fal-Webhook-Request-Id"] = requestId,
        ["X-Fal-Webhook-User-Id"] = "user-1",
        ["X-Fal-Webhook-Timestamp"] = at.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture),
        ["X-Fal-Webhook-Signature"] = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(64)),
    };

    private static byte[] OkBody(string id, string description) => Encoding.UTF8.GetBytes(
        $$$"""{"request_id":"{{{id}}}","status":"OK","payload":{"images":[{"url":"https://v3.fal.media/files/x/out.png","content_type":"image/png"}],"description":"{{{description}}}"}}""");

    private static ByteArrayContent Json(byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new("application/json");
        return content;
    }

    private static async Task<(HttpResponseMessage Response, TimeSpan Elapsed)> PostAsync(
        GatewayHarness harness, IDictionary<string, string> headers, HttpContent content, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/webhooks/fal") { Content = content };
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        // As curl does for large bodies: the body goes out only once the gateway starts reading it (100 Continue),
        // and the answer is read while it is being sent. A gateway that answers without reading is seen to do so.
        request.Headers.ExpectContinue = true;
        using var client = ExpectContinueClient(harness.GatewayUrl);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, TestContext.Current.CancellationToken);
        linked.CancelAfter(TimeSpan.FromSeconds(30)); // a gateway that waits for a body that never ends fails here
        var clock = Stopwatch.StartNew();
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token);
        return (response, clock.Elapsed);
    }

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string slug, TimeSpan? elapsed, bool retryAfter = false)
    {
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
            Assert.True(elapsed is null || elapsed <= Budget, $"answered after {elapsed?.TotalMilliseconds:F0} ms");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
            Assert.Contains($"\"urn:mai-image-gateway:problem:{slug}\"", text, StringComparison.Ordinal);
            if (retryAfter)
            {
                Assert.NotNull(response.Headers.RetryAfter);
            }
        }
    }
}

/// <summary>A body that sends a first chunk and then nothing more, until the request is cancelled.</summary>
internal sealed class StallingContent : HttpContent
{
    private readonly long? _length;
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public StallingContent(long? length)
    {
        _length = length;
        Headers.ContentType = new("application/json");
    }

    public Task Started => _started.Task;

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        await stream.WriteAsync(new byte[1024], cancellationToken);
        await stream.FlushAsync(cancellationToken);
        _started.TrySetResult();
        await Task.Delay(Timeout.Infinite, cancellationToken);
    }

    protected override bool TryComputeLength(out long length)
    {
        length = _length ?? 0;
        return _length is not null;
    }
}

/// <summary><paramref name="size"/> zero bytes, written from one small buffer; chunked when asked.</summary>
internal sealed class ZeroContent(long size, bool chunked) : HttpContent
{
    private static readonly byte[] Zeros = new byte[64 * 1024];

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        for (var left = size; left > 0; left -= Zeros.Length)
        {
            await stream.WriteAsync(Zeros.AsMemory(0, (int)Math.Min(Zeros.Length, left)), cancellationToken);
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = size;
        return !chunked;
    }
}
