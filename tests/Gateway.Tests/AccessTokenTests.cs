using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Gateway.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Tests;

/// <summary>
/// People signed in with the company's identity provider (issue 11): OIDC access tokens from a real issuer on loopback
/// (discovery, JWKS, RSA), beside client keys. The token's app maps to a client, its user owns what they submit.
/// </summary>
public sealed class AccessTokenTests(RedisServer redis)
{
    private const string AlphaApp = "11111111-aaaa-4aaa-8aaa-alpha0000001";
    private const string BetaApp = "22222222-bbbb-4bbb-8bbb-beta00000002";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Dictionary<string, string?> Settings(TestOidcIssuer issuer, params (string Key, string? Value)[] more) =>
        issuer.Settings([("Clients:alpha:AppIds:0", AlphaApp), ("Clients:beta:AppIds:0", BetaApp), .. more]);

    private static HttpClient As(GatewayHarness harness, string token, int replica = 0)
    {
        var client = harness.Client(key: null, replica: replica);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", harness.Secret(token));
        return client;
    }

    [Fact]
    public async Task Token_OfAMappedApp_SubmitsAsItsUser_AndOnlyThatUserSeesIt()
    {
        await using var issuer = await TestOidcIssuer.StartAsync();
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Settings(issuer));
        var ada = As(harness, issuer.Token(AlphaApp, "oid-ada"));
        var bob = As(harness, issuer.Token(AlphaApp, "oid-bob"));

        using var submit = await ada.PostJsonAsync("/v1/generations", new { prompt = "ada's lighthouse" });
        var generation = await submit.JsonAsync();
        Assert.True(submit.StatusCode == HttpStatusCode.Accepted, generation.ToJsonString());
        var id = generation["id"]!.GetValue<string>();
        Assert.Equal("oid-ada", generation["user"]!.GetValue<string>());
        Assert.Equal($"/v1/generations/{id}", submit.Headers.Location!.OriginalString);
        Assert.StartsWith("\"minute\";r=", submit.Headers.GetValues("RateLimit").Single(), StringComparison.Ordinal);

        var done = await ada.WaitUntilDoneAsync(id);
        Assert.Equal("COMPLETED", done["status"]!.GetValue<string>());
        using (var own = await ada.GetAsync($"/v1/generations/{id}", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, own.StatusCode);
            Assert.Equal("oid-ada", (await own.JsonAsync())["user"]!.GetValue<string>());
        }

        // Another user of the same app, the client's own key and another client: 404 on every route, like an unknown id.
        foreach (var other in new[] { bob, harness.Client(GatewayHarness.AlphaKey), harness.Client(GatewayHarness.BetaKey), As(harness, issuer.Token(BetaApp, "oid-ada")) })
        {
            foreach (var (method, path) in new[]
                     {
                         ("GET", $"/v1/generations/{id}"), ("GET", $"/v1/generations/{id}/status"), ("GET", $"/v1/generations/{id}/result"),
                         ("GET", $"/v1/generations/{id}/events"), ("POST", $"/v1/generations/{id}/cancel"),
                     })
            {
                using var response = await other.SendAsync(new HttpRequestMessage(new HttpMethod(method), path), Ct);
                Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{method} {path}: {(int)response.StatusCode}");
                Assert.Equal("urn:mai-image-gateway:problem:not-found", (await response.JsonAsync())["type"]!.GetValue<string>());
            }
        }

        Assert.Equal(0, harness.Fal.CancelCount);
    }

    [Fact]
    public async Task History_ShowsEachUserTheirOwn_AndTheClientKeyItsOwn()
    {
        await using var issuer = await TestOidcIssuer.StartAsync();
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Settings(issuer));
        var ada = As(harness, issuer.Token(AlphaApp, "oid-ada"));
        var bob = As(harness, issuer.Token(AlphaApp, "oid-bob"));
        var key = harness.Client(GatewayHarness.AlphaKey);
        var adas = new[] { await ada.SubmitAsync(new { prompt = "a1" }), await ada.SubmitAsync(new { prompt = "a2" }) };
        var bobs = new[] { await bob.SubmitAsync(new { prompt = "b1" }) };
        var keys = new[] { await key.SubmitAsync(new { prompt = "k1" }) };

        async Task<string[]> Ids(HttpClient client)
        {
            using var response = await client.GetAsync("/v1/generations?limit=100", Ct);
            var page = await response.JsonAsync();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return [.. page["items"]!.AsArray().Select(i => i!["id"]!.GetValue<string>()).Order()];
        }

        Assert.Equal(adas.Order(), await Ids(ada));
        Assert.Equal(bobs, await Ids(bob));
        Assert.Equal(keys, await Ids(key));
    }

    [Fact]
    public async Task AppidClaim_SubFallback_AndAConfiguredUserClaim_NameTheCaller()
    {
        await using var issuer = await TestOidcIssuer.StartAsync();
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Settings(issuer));

        // Entra v1 tokens name the app in appid; a provider without oid names the user in sub.
        var v1 = As(harness, issuer.Token(AlphaApp, "oid-v1", appClaim: "appid"));
        using (var response = await v1.PostJsonAsync("/v1/generations", new { prompt = "v1" }))
        {
            Assert.Equal("oid-v1", (await response.JsonAsync())["user"]!.GetValue<string>());
        }

        var plain = As(harness, issuer.Token(AlphaApp, "ignored", edit: c => c.Remove("oid")));
        using (var response = await plain.PostJsonAsync("/v1/generations", new { prompt = "sub" }))
        {
            Assert.Equal("pairwise-ignored", (await response.JsonAsync())["user"]!.GetValue<string>());
        }

        await using var custom = await GatewayHarness.StartAsync(redis, settings: Settings(issuer, ("Auth:Oidc:UserClaim", "preferred_username")));
        var named = As(custom, issuer.Token(AlphaApp, "oid-x", edit: c => c["preferred_username"] = "ada@corp.example"));
        using (var response = await named.PostJsonAsync("/v1/generations", new { prompt = "named" }))
        {
            Assert.Equal("ada@corp.example", (await response.JsonAsync())["user"]!.GetValue<string>());
        }

        using (var response = await As(custom, issuer.Token(AlphaApp, "oid-y")).PostJsonAsync("/v1/generations", new { prompt = "unnamed" }))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Contains("preferred_username", (await response.JsonAsync())["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task BadTokens_Answer401InvalidToken_AndNothingReachesFal()
    {
        await using var issuer = await TestOidcIssuer.StartAsync();
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Settings(issuer));
        using var stranger = RSA.Create(2048);
        var good = issuer.Token(AlphaApp, "oid-ada");
        var cases = new (string What, string Token)[]
        {
            ("expired", issuer.Token(AlphaApp, "oid-ada", c => { c["exp"] = DateTimeOffset.UtcNow.AddMinutes(-10).ToUnixTimeSeconds(); c["nbf"] = DateTimeOffset.UtcNow.AddHours(-1).ToUnixTimeSeconds(); })),
            ("not yet valid", issuer.Token(AlphaApp, "oid-ada", c => c["nbf"] = DateTimeOffset.UtcNow.AddMinutes(10).ToUnixTimeSeconds())),
            ("wrong audience", issuer.Token(AlphaApp, "oid-ada", c => c["aud"] = "api://some-other-service")),
            ("wrong issuer", issuer.Token(AlphaApp, "oid-ada", c => c["iss"] = "https://login.example.com/other-tenant/v2.0")),
            ("unknown signing key", issuer.Token(AlphaApp, "oid-ada", signWith: ("kid-stranger", stranger))),
            ("a known kid, another key", issuer.Token(AlphaApp, "oid-ada", signWith: (issuer.SigningKey.Kid, stranger))),
            ("alg none", issuer.AlgNone(AlphaApp, "oid-ada")),
            ("tampered claims", good.Split('.')[0] + "." + issuer.Token(AlphaApp, "oid-admin").Split('.')[1] + "." + good.Split('.')[2]),
        };

        foreach (var (what, token) in cases)
        {
            foreach (var (method, path) in new[] { ("POST", "/v1/generations"), ("GET", "/v1/usage"), ("POST", "/api/fal/proxy") })
            {
                using var request = new HttpRequestMessage(new HttpMethod(method), path);
                if (method == "POST")
                {
                    request.Content = JsonContent("{\"prompt\":\"x\"}");
                    request.Headers.Add("x-fal-target-url", "https://queue.fal.run/microsoft/mai-image-2.5");
                }

                using var response = await As(harness, token).SendAsync(request, Ct);
                var problem = await response.JsonAsync();
                Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{what} on {path}: {(int)response.StatusCode} {problem}");
                var challenge = response.Headers.WwwAuthenticate.Single();
                Assert.Equal("Bearer", challenge.Scheme);
                Assert.Contains("error=\"invalid_token\"", challenge.Parameter, StringComparison.Ordinal);
                Assert.Equal("urn:mai-image-gateway:problem:unauthorized", problem["type"]!.GetValue<string>());
                Assert.Equal("The access token is not valid", problem["title"]!.GetValue<string>());
            }
        }

        Assert.Equal(0, harness.Fal.SubmitCount);
        Assert.Empty(harness.Fal.Requests);
    }

    [Fact]
    public async Task ValidTokenOfAnAppThatIsNoClient_Is403_AndNothingReachesFal()
    {
        await using var issuer = await TestOidcIssuer.StartAsync();
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Settings(issuer));
        var stranger = As(harness, issuer.Token("33333333-cccc-4ccc-8ccc-unknown00003", "oid-ada"));

        foreach (var path in new[] { "/v1/generations", "/api/fal/proxy" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent("{\"prompt\":\"x\"}") };
            request.Headers.Add("x-fal-target-url", "https://queue.fal.run/microsoft/mai-image-2.5");
            using var response = await stranger.SendAsync(request, Ct);
            var problem = await response.JsonAsync();
            Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{path}: {(int)response.StatusCode} {problem}");
            Assert.Equal("urn:mai-image-gateway:problem:forbidden", problem["type"]!.GetValue<string>());
            Assert.Contains("33333333-cccc-4ccc-8ccc-unknown00003", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        Assert.Empty(harness.Fal.Requests);
    }

    [Fact]
    public async Task TokenShapedBearer_WithoutAnIssuerConfigured_IsAnUnknownKey()
    {
        await using var issuer = await TestOidcIssuer.StartAsync();
        await using var harness = await GatewayHarness.StartAsync(redis);
        using var response = await As(harness, issuer.Token(AlphaApp, "oid-ada")).PostJsonAsync("/v1/generations", new { prompt = "x" });
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("The client key is not known to this gateway.", (await response.JsonAsync())["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task KeyRotationAtTheIssuer_NewKidIsAcceptedWithoutRestart()
    {
        await using var issuer = await TestOidcIssuer.StartAsync();
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Settings(issuer));
        using (var first = await As(harness, issuer.Token(AlphaApp, "oid-ada")).GetAsync("/v1/usage", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        var fetchesBefore = issuer.JwksFetches;
        issuer.Rotate(keepOld: false); // the old key is withdrawn: only the new kid signs and is published

        using var rotated = await As(harness, issuer.Token(AlphaApp, "oid-ada")).GetAsync("/v1/usage", Ct);
        Assert.True(rotated.StatusCode == HttpStatusCode.OK, $"{(int)rotated.StatusCode} {await rotated.Content.ReadAsStringAsync(Ct)}");
        Assert.True(issuer.JwksFetches > fetchesBefore, "the gateway fetched the keys again when it met the new kid");
    }

    [Fact]
    public async Task PerUserLimits_AreExactAcrossReplicas_AndUsageShowsTheUsersFigures()
    {
        // The clock is shared and still: the minute window cannot roll over under the test.
        var now = DateTimeOffset.UtcNow;
        var time = new FakeTimeProvider(new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, now.Minute, 5, TimeSpan.Zero));
        await using var issuer = await TestOidcIssuer.StartAsync();
        var client = new TestClient(("PerUser:RequestsPerMinute", "4"), ("PerUser:ImagesPerDay", "6"), ("AppIds:0", "app-limited"));
        var settings = Settings(issuer, [.. client.Settings.Select(s => (s.Key, s.Value))]);
        await using var harness = await GatewayHarness.StartAsync(redis, settings: settings, replicas: 3, services: FakeTime.Use(time));
        var ada = issuer.Token("app-limited", "oid-ada");
        var bob = issuer.Token("app-limited", "oid-bob");

        var responses = await Task.WhenAll(Enumerable.Range(0, 12).Select(async i =>
        {
            using var response = await As(harness, ada, replica: i % 3).PostJsonAsync("/v1/generations", new { prompt = $"burst {i}" });
            return (response.StatusCode, Headers: response.Headers, Body: await response.JsonAsync());
        }));

        var accepted = responses.Count(r => r.StatusCode == HttpStatusCode.Accepted);
        var refused = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.True(accepted == 4 && refused.Count == 8, string.Join("\n", responses.Select(r => $"{(int)r.StatusCode} {r.Body.ToJsonString()}")));
        Assert.Equal(4, harness.Fal.SubmitCount);
        foreach (var (_, headers, body) in refused)
        {
            Assert.Equal(["per_user.requests_per_minute"], body["limits"]!.AsArray().Select(l => l!.GetValue<string>()));
            Assert.Contains("Your limit (per user) of 4 submits per minute", body["detail"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Contains("\"user-minute\";r=0;t=55", headers.GetValues("RateLimit").Single(), StringComparison.Ordinal);
            Assert.Contains("\"user-minute\";q=4;w=60, \"user-day\";q=6;w=86400", headers.GetValues("RateLimit-Policy").Single(), StringComparison.Ordinal);
            Assert.Equal("55", headers.GetValues("Retry-After").Single());
        }

        // Bob, another user of the same client, has his own allowance; his images per day stop at 6.
        using (var three = await As(harness, bob, replica: 1).PostJsonAsync("/v1/generations", new { prompt = "bob 3", num_images = 3 }))
        {
            Assert.Equal(HttpStatusCode.Accepted, three.StatusCode);
        }

        using (var four = await As(harness, bob, replica: 2).PostJsonAsync("/v1/generations", new { prompt = "bob 4", num_images = 4 }))
        {
            var body = await four.JsonAsync();
            Assert.Equal(HttpStatusCode.TooManyRequests, four.StatusCode);
            Assert.Equal(["per_user.images_per_day"], body["limits"]!.AsArray().Select(l => l!.GetValue<string>()));
        }

        // The client key is no user: no per-user limit applies to it.
        foreach (var i in Enumerable.Range(0, 5))
        {
            await harness.Client(client.Key, replica: i % 3).SubmitAsync(new { prompt = $"key {i}" });
        }

        using var usage = await As(harness, ada, replica: 2).GetAsync("/v1/usage", Ct);
        var figures = await usage.JsonAsync();
        Assert.Equal(HttpStatusCode.OK, usage.StatusCode);
        Assert.Equal(10, figures["submits"]!.GetValue<long>()); // the client's: ada 4, bob 1, key 5
        var user = figures["user"]!;
        Assert.Equal("oid-ada", user["id"]!.GetValue<string>());
        Assert.Equal(4, user["submits"]!.GetValue<long>());
        Assert.Equal(4, user["images"]!.GetValue<long>());
        Assert.Equal(0, user["limits"]!["requests_per_minute"]!["remaining"]!.GetValue<long>());
        Assert.Equal(2, user["limits"]!["images_per_day"]!["remaining"]!.GetValue<long>());

        using var keyUsage = await harness.Client(client.Key).GetAsync("/v1/usage", Ct);
        Assert.Null((await keyUsage.JsonAsync())["user"]);
    }

    [Fact]
    public async Task PerUserLimits_ApplyInMemoryModeToo_AndEachUserCountsApart()
    {
        await using var issuer = await TestOidcIssuer.StartAsync();
        await using var harness = await GatewayHarness.StartAsync(null, settings: Settings(issuer,
            ("Clients:alpha:PerUser:RequestsPerMinute", "100"), ("Clients:alpha:PerUser:ImagesPerDay", "3")));
        var ada = As(harness, issuer.Token(AlphaApp, "oid-ada"));
        var bob = As(harness, issuer.Token(AlphaApp, "oid-bob"));

        await ada.SubmitAsync(new { prompt = "a", num_images = 2 });
        using (var refused = await ada.PostJsonAsync("/v1/generations", new { prompt = "b", num_images = 2 }))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.Equal(["per_user.images_per_day"], (await refused.JsonAsync())["limits"]!.AsArray().Select(l => l!.GetValue<string>()));
        }

        await ada.SubmitAsync(new { prompt = "c", num_images = 1 });
        await bob.SubmitAsync(new { prompt = "d", num_images = 3 });
        using var usage = await bob.GetAsync("/v1/usage", Ct);
        var figures = await usage.JsonAsync();
        Assert.Equal(6, figures["images"]!.GetValue<long>());
        Assert.Equal(3, figures["user"]!["images"]!.GetValue<long>());
        Assert.Equal(99, figures["user"]!["limits"]!["requests_per_minute"]!["remaining"]!.GetValue<long>());
    }

    [Fact]
    public async Task IdempotencyKeys_ArePerUser()
    {
        await using var issuer = await TestOidcIssuer.StartAsync();
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Settings(issuer));

        async Task<JsonNode> Submit(string user)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/generations") { Content = JsonContent("{\"prompt\":\"same\"}") };
            request.Headers.Add("Idempotency-Key", "shared-key-1");
            using var response = await As(harness, issuer.Token(AlphaApp, user)).SendAsync(request, Ct);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            return await response.JsonAsync();
        }

        var ada = await Submit("oid-ada");
        var bob = await Submit("oid-bob");
        var adaAgain = await Submit("oid-ada");

        Assert.NotEqual(ada["id"]!.GetValue<string>(), bob["id"]!.GetValue<string>());
        Assert.Equal("oid-bob", bob["user"]!.GetValue<string>());
        Assert.Equal(ada["id"]!.GetValue<string>(), adaAgain["id"]!.GetValue<string>());
        Assert.Equal(2, harness.Fal.SubmitCount);
    }

    [Fact]
    public async Task ProxySubmitWithAToken_BelongsToTheUser_ThroughBothApis()
    {
        await using var issuer = await TestOidcIssuer.StartAsync();
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Settings(issuer));
        var ada = As(harness, issuer.Token(AlphaApp, "oid-ada"));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/fal/proxy") { Content = JsonContent("{\"prompt\":\"proxied\"}") };
        request.Headers.Add("x-fal-target-url", "https://queue.fal.run/microsoft/mai-image-2.5");
        using var submit = await ada.SendAsync(request, Ct);
        var body = await submit.JsonAsync();
        Assert.True(submit.StatusCode == HttpStatusCode.OK, body.ToJsonString());
        var id = body["request_id"]!.GetValue<string>();

        using var own = await ada.GetAsync($"/v1/generations/{id}", Ct);
        Assert.Equal("oid-ada", (await own.JsonAsync())["user"]!.GetValue<string>());
        using var status = new HttpRequestMessage(HttpMethod.Get, "/api/fal/proxy");
        status.Headers.Add("x-fal-target-url", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{id}/status");
        using var theirs = await As(harness, issuer.Token(AlphaApp, "oid-bob")).SendAsync(status, Ct);
        Assert.Equal(HttpStatusCode.NotFound, theirs.StatusCode);
    }

    [Fact]
    public async Task User_IsOnTheRequestLogLineAndTheTrace_NotOnMetrics_AndTheTokenNowhere()
    {
        using var spans = new RequestSpans();
        await using var issuer = await TestOidcIssuer.StartAsync();
        // Everything at Verbose, as someone debugging would: the token (its signature) must still show nowhere (checked on dispose).
        var verbose = new[] { "Microsoft.AspNetCore", "Microsoft", "System" }.Select(c => ($"Serilog:MinimumLevel:Override:{c}", (string?)"Verbose"));
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Settings(issuer, [.. verbose]));
        var user = "oid-" + Guid.NewGuid().ToString("N");
        var ada = As(harness, issuer.Token(AlphaApp, user));
        var id = await ada.SubmitAsync(new { prompt = "observed" });
        await ada.WaitUntilDoneAsync(id);
        using (await As(harness, issuer.Token(AlphaApp, user, c => c["aud"] = "wrong")).GetAsync("/v1/usage", Ct))
        {
        }

        await Task.Delay(300, Ct); // the request-log line is written after the response
        var line = Assert.Single(harness.LogEvents, e => e.MessageTemplate.Text.StartsWith("HTTP {RequestMethod} {RequestPath}", StringComparison.Ordinal)
            && e.Properties["RequestMethod"].ToString() == "\"POST\"" && e.Properties["RequestPath"].ToString() == "\"/v1/generations\"");
        Assert.Equal($"\"{user}\"", line.Properties["User"].ToString());
        Assert.Equal("\"alpha\"", line.Properties["Client"].ToString());
        var ended = spans.Ended;
        Assert.Contains(ended, s => s.GetTagItem("enduser.id") as string == user && s.GetTagItem("gateway.client") as string == "alpha");

        var text = "";
        for (var i = 0; i < 100 && !text.Contains("gateway_client_submits", StringComparison.Ordinal); i++)
        {
            await Task.Delay(100, Ct); // the meter adapter publishes on a short tick
            text = await harness.Client(key: null).GetStringAsync("/metrics", Ct);
        }

        Assert.Contains("gateway_client_submits", text, StringComparison.Ordinal);
        Assert.DoesNotContain(user, text, StringComparison.Ordinal);
    }

    private static StringContent JsonContent(string json) => new(json, System.Text.Encoding.UTF8, "application/json");
}
