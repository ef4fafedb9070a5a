using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests;

public sealed class FalProxyTests(RedisServer redis)
{
    private const string Model = "https://queue.fal.run/microsoft/mai-image-2.5";
    private const string Edit = "https://queue.fal.run/microsoft/mai-image-2.5/edit";
    private const string Requests = "https://queue.fal.run/microsoft/mai-image-2.5/requests/";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string, string> TargetsNotAllowed => new()
    {
        { "POST", "http://queue.fal.run/microsoft/mai-image-2.5" },
        { "POST", "ftp://queue.fal.run/microsoft/mai-image-2.5" },
        { "POST", "//queue.fal.run/microsoft/mai-image-2.5" },
        { "POST", "https://user:secret@queue.fal.run/microsoft/mai-image-2.5" },
        { "POST", "https://queue.fal.run@evil.example/microsoft/mai-image-2.5" },
        { "POST", "https://104.18.12.34/microsoft/mai-image-2.5" },
        { "POST", "https://[::1]/microsoft/mai-image-2.5" },
        { "POST", "https://queue.fal.run:8443/microsoft/mai-image-2.5" },
        { "POST", "https://queue.fal.run:443/microsoft/mai-image-2.5" },
        { "POST", "https://queue.fal.run.evil.example/microsoft/mai-image-2.5" },
        { "POST", "https://evil.example/microsoft/mai-image-2.5" },
        { "POST", "https://queue.fal.run./microsoft/mai-image-2.5" },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5/%2e%2e/%2e%2e/fal-ai/flux/dev" },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5%2fedit" },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5/../../fal-ai/flux/dev" },
        { "POST", "https://queue.fal.run/microsoft\\mai-image-2.5" },
        { "POST", "https://queue.fal.run//microsoft/mai-image-2.5" },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5#fragment" },
        { "POST", "https://queue.fal.run/fal-ai/flux/dev" },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5/other" },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5?sync=1" },
        { "POST", "https://fal.run/microsoft/mai-image-2.5" },
        { "POST", "https://rest.fal.ai/storage/upload/initiate" },
        { "POST", "https://rest.fal.ai/storage/upload/initiate?storage_type=gcs" },
        { "POST", "https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3&storage_type=fal-cdn-v3" },
        { "POST", "https://rest.fal.ai/tokens/" },
        { "GET", "https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3" },
        { "GET", "https://queue.fal.run/microsoft/mai-image-2.5" },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5/requests/abc-123/status" },
        { "PUT", "https://queue.fal.run/microsoft/mai-image-2.5/requests/abc-123" },
        { "GET", "https://queue.fal.run/microsoft/mai-image-2.5/requests/abc-123/cancel" },
        { "GET", "https://queue.fal.run/fal-ai/flux/requests/abc-123/status" },
        { "GET", "https://queue.fal.run/microsoft/mai-image-2.5/requests/abc-123/status?logs=1&x=2" },
        { "GET", "https://queue.fal.run/microsoft/mai-image-2.5/requests/abc.123/status" },
        { "GET", "javascript:alert(1)" },
    };

    [Theory]
    [MemberData(nameof(TargetsNotAllowed))]
    public async Task Proxy_TargetNotAllowed_Returns400InvalidRequest_AndNothingReachesFal(string method, string target)
    {
        await using var harness = await GatewayHarness.StartAsync(redis);

        using var response = await ProxyAsync(harness.Client(), new HttpMethod(method), target, method == "GET" ? null : """{"prompt":"a lighthouse"}""");
        var body = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("Invalid request", body["message"]!.GetValue<string>());
        Assert.False(string.IsNullOrWhiteSpace(body["detail"]!.GetValue<string>()));
        Assert.Empty(harness.Fal.Requests);
    }

    [Fact]
    public async Task Proxy_WithoutTargetHeader_Returns400InvalidRequest()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);

        using var response = await harness.Client().PostJsonAsync("/api/fal/proxy", """{"prompt":"x"}""");
        var body = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("Invalid request", body["message"]!.GetValue<string>());
        Assert.Contains("x-fal-target-url", body["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Empty(harness.Fal.Requests);
    }

    [Fact]
    public async Task Proxy_TwoTargetValuesInOneHeader_Returns400()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/fal/proxy")
        {
            Content = new StringContent("""{"prompt":"x"}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.TryAddWithoutValidation("x-fal-target-url", [Model, "https://queue.fal.run/fal-ai/flux/dev"]);

        using var response = await harness.Client().SendAsync(request, Ct);
        var body = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("Invalid request", body["message"]!.GetValue<string>());
        Assert.Empty(harness.Fal.Requests);
    }

    [Fact]
    public async Task Proxy_TwoTargetHeaderLines_Returns400()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var url = harness.GatewayUrl;
        const string json = """{"prompt":"x"}""";
        var raw = $"POST /api/fal/proxy HTTP/1.1\r\nHost: {url.Authority}\r\nAuthorization: Bearer {GatewayHarness.AlphaKey}\r\n"
            + $"x-fal-target-url: {Model}\r\nx-fal-target-url: {Edit}\r\nContent-Type: application/json\r\n"
            + $"Content-Length: {json.Length}\r\nConnection: close\r\n\r\n{json}";

        using var tcp = new TcpClient();
        await tcp.ConnectAsync(url.Host, url.Port, Ct);
        await using var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(raw), Ct);
        var answer = await new StreamReader(stream).ReadToEndAsync(Ct);

        Assert.StartsWith("HTTP/1.1 400", answer, StringComparison.Ordinal);
        Assert.Contains("Exactly one x-fal-target-url", answer, StringComparison.Ordinal);
        Assert.Empty(harness.Fal.Requests);
    }

    [Fact]
    public async Task Proxy_WithLegacyStatusCodes_Answers412ForATargetNotAllowed_And400ForAMissingHeader()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: new Dictionary<string, string?> { ["FalProxy:LegacyStatusCodes"] = "true" });
        var client = harness.Client();

        using var refused = await ProxyAsync(client, HttpMethod.Post, "https://queue.fal.run/fal-ai/flux/dev", """{"prompt":"x"}""");
        var refusedBody = await refused.JsonAsync();
        using var missing = await client.PostJsonAsync("/api/fal/proxy", """{"prompt":"x"}""");
        var missingBody = await missing.JsonAsync();

        Assert.Equal(HttpStatusCode.PreconditionFailed, refused.StatusCode);
        Assert.Equal("Invalid x-fal-target-url header", refusedBody["message"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Equal("Missing the x-fal-target-url header", missingBody["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task Proxy_WithoutClientKey_Returns401_AndNothingReachesFal()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);

        using var response = await ProxyAsync(harness.Client(key: null), HttpMethod.Post, Model, """{"prompt":"x"}""");
        var body = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("urn:mai-image-gateway:problem:unauthorized", body["type"]!.GetValue<string>());
        Assert.Empty(harness.Fal.Requests);
    }

    [Fact]
    public async Task Proxy_WithFalKeyInsteadOfClientKey_Returns401()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var client = harness.Client(key: null);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Key", "not-a-client-key");

        using var response = await ProxyAsync(client, HttpMethod.Post, Model, """{"prompt":"x"}""");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Empty(harness.Fal.Requests);
    }

    [Theory]
    [InlineData("Bearer")]
    [InlineData("X-Api-Key")]
    [InlineData("Key")]
    public async Task Proxy_Submit_SendsTheFalKey_NeverTheClientKeyOrCookies_AndNamesTheGateway(string credentials)
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var client = harness.Client(key: null);
        switch (credentials)
        {
            case "X-Api-Key":
                client.DefaultRequestHeaders.Add("X-Api-Key", GatewayHarness.AlphaKey);
                break;
            default:
                client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue(credentials, GatewayHarness.AlphaKey);
                break;
        }

        using var response = await ProxyAsync(client, HttpMethod.Post, Model, """{"prompt":"a lighthouse","num_images":2}""", request =>
        {
            request.Headers.Add("Cookie", "session=cookie-secret");
            request.Headers.Add("x-fal-queue-priority", "low");
            request.Headers.Add("x-fal-client-proxy", "spoofed");
            request.Headers.Add("X-Internal-Thing", "do-not-forward");
            request.Headers.Add("User-Agent", "frontend-test/1.0");
        });
        var body = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var id = body["request_id"]!.GetValue<string>();
        Assert.Equal(id, response.Headers.GetValues("x-fal-request-id").Single());
        var submit = Assert.Single(harness.Fal.Requests, r => r.Method == "POST");
        Assert.Equal("/microsoft/mai-image-2.5", submit.PathAndQuery);
        Assert.Equal($"Key {harness.FalKey}", submit.Headers["Authorization"]);
        Assert.Equal("mai-image-gateway", submit.Headers["x-fal-client-proxy"]);
        Assert.Equal("low", submit.Headers["x-fal-queue-priority"]);
        Assert.Equal("frontend-test/1.0", submit.Headers["User-Agent"]);
        Assert.False(submit.Headers.ContainsKey("Cookie"));
        Assert.False(submit.Headers.ContainsKey("X-Api-Key"));
        Assert.False(submit.Headers.ContainsKey("X-Internal-Thing"));
        Assert.False(submit.Headers.ContainsKey("x-fal-target-url"));
        Assert.DoesNotContain(submit.Headers.Values, v => v.Contains(GatewayHarness.AlphaKey, StringComparison.Ordinal));

        // Recorded as the caller's, like a /v1 submit.
        using var generation = await harness.Client().GetAsync($"/v1/generations/{id}", Ct);
        var record = await generation.JsonAsync();
        Assert.Equal(HttpStatusCode.OK, generation.StatusCode);
        Assert.Equal("microsoft/mai-image-2.5", record["model"]!.GetValue<string>());
    }

    [Fact]
    public async Task Proxy_Submit_ForwardsOnlyTheValidatedInput()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);

        using var response = await ProxyAsync(harness.Client(), HttpMethod.Post, Model,
            """{"prompt":"a lighthouse","num_images":2,"output_format":"webp","aspect_ratio":null,"sync_mode":false}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var (path, body) = harness.ForwardedSubmit();
        Assert.Equal("/microsoft/mai-image-2.5", path);
        // The caller's null is dropped; a false it chose is kept, as fal's own client would send it.
        GatewayHarness.AssertSameJson("""{"prompt":"a lighthouse","num_images":2,"output_format":"webp","sync_mode":false}""", body);
    }

    [Fact]
    public async Task Proxy_Submit_ReplacesTheCallersFalWebhookWithTheGateways()
    {
        await using var harness = await GatewayHarness.StartAsync(redis,
            settings: new Dictionary<string, string?> { ["Gateway:PublicBaseUrl"] = "http://127.0.0.1:9/gw" });

        using var response = await ProxyAsync(harness.Client(), HttpMethod.Post,
            Model + "?fal_webhook=https%3A%2F%2Fevil.example%2Fhook&fal_max_queue_length=50", """{"prompt":"x"}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var submit = Assert.Single(harness.Fal.Requests, r => r.Method == "POST");
        Assert.DoesNotContain("evil.example", submit.PathAndQuery, StringComparison.Ordinal);
        Assert.Contains("fal_webhook=" + Uri.EscapeDataString("http://127.0.0.1:9/gw/v1/webhooks/fal"), submit.PathAndQuery, StringComparison.Ordinal);
        Assert.Contains("fal_max_queue_length=50", submit.PathAndQuery, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Proxy_Submit_DropsTheCallersFalWebhook_WhenTheGatewayHasNoPublicUrl()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);

        using var response = await ProxyAsync(harness.Client(), HttpMethod.Post, Edit + "?fal_webhook=https%3A%2F%2Fevil.example%2Fhook",
            $$"""{"prompt":"x","image_urls":["{{GenerationFlowTests.TinyPngDataUri()}}"]}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var submit = Assert.Single(harness.Fal.Requests, r => r.Method == "POST");
        Assert.Equal("/microsoft/mai-image-2.5/edit", submit.PathAndQuery);
    }

    public static TheoryData<string, string, string> InvalidSubmits => new()
    {
        { Model, """{"prompt":"x","num_images":9}""", "num_images" },
        { Model, """{"num_images":1}""", "prompt" },
        { Model, """{"prompt":"x","aspect_ratio":"7:3"}""", "aspect_ratio" },
        { Model, """{"prompt":"x","output_format":"bmp"}""", "output_format" },
        { Model, """{"prompt":"x","seed":42}""", "seed" },
        { Model, """{"prompt":"x","num_images":"many"}""", "num_images" },
        { Edit, """{"prompt":"x"}""", "image_urls" },
        { Edit, """{"prompt":"x","image_urls":["ftp://example.com/a.png"]}""", "image_urls[0]" },
        { Edit, """{"prompt":"x","image_urls":["https://example.com/a.png"],"aspect_ratio":"21:9"}""", "aspect_ratio" },
    };

    [Theory]
    [MemberData(nameof(InvalidSubmits))]
    public async Task Proxy_InvalidSubmit_Returns422InFalsShape_NamingTheSameFieldAsV1_AndNothingReachesFal(string target, string json, string field)
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var client = harness.Client();

        using var response = await ProxyAsync(client, HttpMethod.Post, target, json);
        var body = await response.JsonAsync();
        using var v1 = await client.PostJsonAsync(target == Edit ? "/v1/edits" : "/v1/generations", json);
        var problem = await v1.JsonAsync();

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = Assert.Single(body["detail"]!.AsArray())!;
        var loc = error["loc"]!.AsArray().Select(n => n!.GetValueKind() == System.Text.Json.JsonValueKind.Number ? $"[{n}]" : "." + n).ToList();
        Assert.Equal(".body", loc[0]);
        Assert.Equal(field, string.Concat(loc.Skip(1)).TrimStart('.'));
        Assert.False(string.IsNullOrWhiteSpace(error["msg"]!.GetValue<string>()));
        Assert.False(string.IsNullOrWhiteSpace(error["type"]!.GetValue<string>()));
        Assert.Equal(HttpStatusCode.BadRequest, v1.StatusCode);
        Assert.Equal(field, problem.Field());
        Assert.Equal(0, harness.Fal.SubmitCount);
    }

    [Fact]
    public async Task Proxy_SubmitWithMalformedJson_Returns422NamingTheBody()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);

        using var response = await ProxyAsync(harness.Client(), HttpMethod.Post, Model, """{"prompt": """);
        var body = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal("""["body"]""", body["detail"]![0]!["loc"]!.ToJsonString());
        Assert.Equal("json_invalid", body["detail"]![0]!["type"]!.GetValue<string>());
        Assert.Equal(0, harness.Fal.SubmitCount);
    }

    [Fact]
    public async Task Proxy_ReadsAndCancelOfAnotherClientsRequest_Return404_AndNeverReachFal()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(5));
        var id = await SubmitAsync(harness.Client());
        var beta = harness.Client(GatewayHarness.BetaKey);

        foreach (var (method, target) in new[]
                 {
                     (HttpMethod.Get, $"{Requests}{id}/status?logs=0"),
                     (HttpMethod.Get, $"{Requests}{id}/status/stream"),
                     (HttpMethod.Get, $"{Requests}{id}"),
                     (HttpMethod.Put, $"{Requests}{id}/cancel"),
                 })
        {
            using var response = await ProxyAsync(beta, method, target);
            var body = await response.JsonAsync();
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal($"Request {id} not found", body["detail"]!.GetValue<string>());
        }

        using var v1 = await beta.GetAsync($"/v1/generations/{id}", Ct);
        Assert.Equal(HttpStatusCode.NotFound, v1.StatusCode);
        Assert.Equal(0, harness.Fal.StatusCallsFor(id));
        Assert.Equal(0, harness.Fal.ResultCallsFor(id));
        Assert.Equal(0, harness.Fal.CancelCount);
    }

    [Fact]
    public async Task Proxy_KeptParsedTargets_CarryNoCaller_AndStayBounded()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(5));
        var alpha = harness.Client();
        var beta = harness.Client(GatewayHarness.BetaKey);
        var id = await SubmitAsync(alpha);
        var status = $"{Requests}{id}/status?logs=0";

        // The same target, parsed once and kept, is still checked against each caller, in any order.
        using (var denied = await ProxyAsync(beta, HttpMethod.Get, status))
        {
            Assert.Equal(HttpStatusCode.NotFound, denied.StatusCode);
        }

        using (var allowed = await ProxyAsync(alpha, HttpMethod.Get, status))
        {
            Assert.True(allowed.IsSuccessStatusCode, allowed.StatusCode.ToString());
        }

        using (var deniedAgain = await ProxyAsync(beta, HttpMethod.Get, status))
        {
            Assert.Equal(HttpStatusCode.NotFound, deniedAgain.StatusCode);
        }

        // More distinct targets than are kept: each still answers for itself, and the caller's own still works after.
        for (var i = 0; i < Proxy.FalProxyHandler.ParsedTargetLimit + 100; i++)
        {
            using var unknown = await ProxyAsync(alpha, HttpMethod.Get, $"{Requests}unknown-{i}/status");
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        }

        using var own = await ProxyAsync(alpha, HttpMethod.Get, status);
        Assert.True(own.IsSuccessStatusCode, own.StatusCode.ToString());
        Assert.Equal(0, harness.Fal.StatusCallsFor("unknown-0"));
    }

    [Fact]
    public async Task Proxy_ResultOfACompletedRequest_IsServedFromTheStore_NotFetchedFromFalAgain()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var client = harness.Client();
        var id = await SubmitAsync(client);
        await WaitForFalCompletedAsync(client, id);

        var bodies = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            using var response = await ProxyAsync(client, HttpMethod.Get, $"{Requests}{id}");
            var body = await response.JsonAsync();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(id, response.Headers.GetValues("x-fal-request-id").Single());
            Assert.Single(body["images"]!.AsArray());
            bodies.Add(body.ToJsonString());
        }

        using var v1 = await client.GetAsync($"/v1/generations/{id}/result", Ct);
        Assert.Equal(bodies[0], (await v1.JsonAsync()).ToJsonString());
        Assert.All(bodies, b => Assert.Equal(bodies[0], b));
        Assert.Equal(1, harness.Fal.ResultCallsFor(id));
    }

    [Fact]
    public async Task Proxy_ResultWhilePending_ComesBackAsFalSentIt()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(5));
        var client = harness.Client();
        var id = await SubmitAsync(client);

        using var response = await ProxyAsync(client, HttpMethod.Get, $"{Requests}{id}");
        var body = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("Request is still in progress", body["detail"]!.GetValue<string>());
        Assert.Equal(id, response.Headers.GetValues("x-fal-request-id").Single());
    }

    [Fact]
    public async Task Proxy_StatusStream_FlowsEventByEvent_UntilCompleted()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(2));
        var client = harness.Client();
        var id = await SubmitAsync(client);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/fal/proxy");
        request.Headers.Add("x-fal-target-url", $"{Requests}{id}/status/stream?logs=0");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));

        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct));
        var statuses = new List<string>();
        var firstEventWhileRunning = false;
        while (await reader.ReadLineAsync(Ct) is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                var status = JsonNode.Parse(line[6..])!["status"]!.GetValue<string>();
                if (statuses.Count == 0)
                {
                    // Arrived while the job still runs: the gateway did not wait for the stream to end.
                    firstEventWhileRunning = status != "COMPLETED" && harness.Fal.ResultCallsFor(id) == 0;
                }

                statuses.Add(status);
            }
        }

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.True(firstEventWhileRunning, string.Join(",", statuses));
        Assert.Contains("IN_PROGRESS", statuses);
        Assert.Equal("COMPLETED", statuses[^1]);
    }

    [Fact]
    public async Task Proxy_StatusAndCancel_OfTheCallersRequest_AreForwarded()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, e => { e.MaxConcurrent = 1; e.RunTime = TimeSpan.FromSeconds(3); });
        var client = harness.Client();
        await SubmitAsync(client);
        var id = await SubmitAsync(client);

        using var status = await ProxyAsync(client, HttpMethod.Get, $"{Requests}{id}/status?logs=1");
        var statusBody = await status.JsonAsync();
        using var cancel = await ProxyAsync(client, HttpMethod.Put, $"{Requests}{id}/cancel");
        var cancelBody = await cancel.JsonAsync();

        Assert.Equal(HttpStatusCode.Accepted, status.StatusCode);
        Assert.Equal("IN_QUEUE", statusBody["status"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        Assert.Equal("CANCELLATION_REQUESTED", cancelBody["status"]!.GetValue<string>());
        Assert.Equal(1, harness.Fal.CancelCount);
    }

    [Fact]
    public async Task Proxy_StorageInitiate_IsForwardedWithItsBody()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);

        using var response = await ProxyAsync(harness.Client(), HttpMethod.Post,
            "https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3", """{"content_type":"image/png","file_name":"in.png"}""");
        var body = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.EndsWith("/in.png", body["file_url"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.NotNull(body["upload_url"]);
        var initiate = Assert.Single(harness.Fal.Requests);
        Assert.Equal("/rest/storage/upload/initiate?storage_type=fal-cdn-v3", initiate.PathAndQuery);
        Assert.Equal($"Key {harness.FalKey}", initiate.Headers["Authorization"]);
    }

    [Fact]
    public async Task Proxy_FalRun_IsForwarded_WhenAllowRunIsSet()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: new Dictionary<string, string?> { ["FalProxy:AllowRun"] = "true" });
        var client = harness.Client();

        using var response = await ProxyAsync(client, HttpMethod.Post, "https://fal.run/microsoft/mai-image-2.5", """{"prompt":"x"}""");
        var body = await response.JsonAsync();
        using var invalid = await ProxyAsync(client, HttpMethod.Post, "https://fal.run/microsoft/mai-image-2.5", """{"prompt":"x","num_images":0}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Single(body["images"]!.AsArray());
        Assert.Equal(HttpStatusCode.UnprocessableEntity, invalid.StatusCode);
        Assert.Equal(1, harness.Fal.RunCount);
    }

    /// <summary>fal out of reach: the proxied submit answers 502 in fal's shape, like the proxy's other refusals, and counts nothing.</summary>
    [Fact]
    public async Task Proxy_WhenFalCannotBeReached_Answers502_AndGivesTheUnitsBack()
    {
        var client = new TestClient();
        var dead = $"http://127.0.0.1:{RedisServer.FreePort()}";
        await using var harness = await GatewayHarness.StartAsync(redis, settings: client.With(("Fal:QueueBaseUrl", dead)));
        var http = harness.Client(client.Key);

        using var response = await ProxyAsync(http, HttpMethod.Post, Model, """{"prompt":"a lighthouse"}""");

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType); // fal's shape, which @fal-ai/client reads
        Assert.Contains("fal", (await response.JsonAsync())["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        var usage = await (await http.GetAsync("/v1/usage", Ct)).JsonAsync();
        Assert.Equal(0, usage["submits"]!.GetValue<int>());
    }

    internal static async Task<HttpResponseMessage> ProxyAsync(
        HttpClient client, HttpMethod method, string target, string? json = null, Action<HttpRequestMessage>? configure = null)
    {
        using var request = new HttpRequestMessage(method, "/api/fal/proxy");
        request.Headers.TryAddWithoutValidation("x-fal-target-url", target);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        configure?.Invoke(request);
        return await client.SendAsync(request, Ct);
    }

    private static async Task<string> SubmitAsync(HttpClient client)
    {
        using var response = await ProxyAsync(client, HttpMethod.Post, Model, """{"prompt":"a lighthouse"}""");
        var body = await response.JsonAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToJsonString());
        return body["request_id"]!.GetValue<string>();
    }

    private static async Task WaitForFalCompletedAsync(HttpClient client, string id)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            using var response = await ProxyAsync(client, HttpMethod.Get, $"{Requests}{id}/status?logs=0");
            var body = await response.JsonAsync();
            if (body["status"]!.GetValue<string>() == "COMPLETED")
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, body.ToJsonString());
            await Task.Delay(50, Ct);
        }
    }
}
