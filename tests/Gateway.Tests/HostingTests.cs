using System.Net;
using Gateway.Tests.Infrastructure;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Gateway.Tests;

public sealed class HostingTests(RedisServer redis)
{
    [Fact]
    public async Task Health_LiveAndReady_With_Redis_Return200()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var client = harness.Client(key: null);
        using var live = await client.GetAsync("/health/live", TestContext.Current.CancellationToken);
        using var ready = await client.GetAsync("/health/ready", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
    }

    [Fact]
    public async Task Ready_WhenRedisIsUnreachable_Returns503_WhileLiveStays200()
    {
        var dead = new Dictionary<string, string?> { ["ConnectionStrings:Redis"] = $"127.0.0.1:{RedisServer.FreePort()},connectTimeout=200" };
        await using var harness = await GatewayHarness.StartAsync(redis: null, settings: dead);
        var client = harness.Client(key: null);
        using var live = await client.GetAsync("/health/live", TestContext.Current.CancellationToken);
        using var ready = await client.GetAsync("/health/ready", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
    }

    /// <summary>
    /// A browser's EventSource accepts only text/event-stream; the gateway's problems are JSON all the same (the
    /// framework's writer would refuse the Accept header and the refusal become a bodiless 500).
    /// </summary>
    [Theory]
    [InlineData("text/event-stream")]
    [InlineData("image/png")]
    public async Task Problems_AreJson_WhateverTheRequestAccepts(string accept)
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var id = Guid.NewGuid().ToString("N");
        foreach (var (client, status, type) in new[] { (harness.Client(key: null), HttpStatusCode.Unauthorized, "unauthorized"), (harness.Client(), HttpStatusCode.NotFound, "not-found") })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/generations/{id}/events");
            request.Headers.Accept.ParseAdd(accept);
            using var response = await client.SendAsync(request, TestContext.Current.CancellationToken);
            Assert.Equal(status, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            var problem = await response.JsonAsync();
            Assert.EndsWith(type, problem["type"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.NotNull(problem["trace_id"]);
        }
    }

    [Fact]
    public async Task Start_LoadsNoDataProtectionKeyRing_YetDataProtectionStillWorks()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);

        // Nothing here uses data protection: its start-up service would read or write an XML key ring under $HOME
        // (refused by a read-only root filesystem) and keep the XML stack in memory.
        var hosted = harness.Services.GetServices<IHostedService>().Select(s => s.GetType().FullName).ToList();
        Assert.DoesNotContain("Microsoft.AspNetCore.DataProtection.Internal.DataProtectionHostedService", hosted);
        Assert.Contains(hosted, name => name == typeof(Gateway.Hosting.GracefulShutdown).FullName);

        // Still registered: whatever asks for it gets a working protector (its key ring loads then, not at start).
        var protector = harness.Services.GetRequiredService<Microsoft.AspNetCore.DataProtection.IDataProtectionProvider>().CreateProtector("test");
        Assert.Equal("round trip", protector.Unprotect(protector.Protect("round trip")));
    }

    [Fact]
    public async Task Authorization_ServicesAreBuiltOnce_NotPerRequest_AndStillDecide()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);

        // What the authorization middleware resolves for every request: one instance across requests (scopes).
        Type[] perRequestBefore =
        [
            typeof(Microsoft.AspNetCore.Authorization.Policy.IPolicyEvaluator), typeof(Microsoft.AspNetCore.Authorization.IAuthorizationService),
            typeof(Microsoft.AspNetCore.Authorization.IAuthorizationHandlerProvider), typeof(Microsoft.AspNetCore.Authorization.IAuthorizationMiddlewareResultHandler),
        ];
        foreach (var type in perRequestBefore)
        {
            using var first = harness.Services.CreateScope();
            using var second = harness.Services.CreateScope();
            Assert.Same(first.ServiceProvider.GetRequiredService(type), second.ServiceProvider.GetRequiredService(type));
        }

        // And they still decide: no key is 401, a known key passes, an unknown one is 401.
        var cancellationToken = TestContext.Current.CancellationToken;
        using var anonymous = await harness.Client(key: null).GetAsync("/v1/usage", cancellationToken);
        using var known = await harness.Client().GetAsync("/v1/usage", cancellationToken);
        using var unknown = await harness.Client(key: "not-a-client-key").GetAsync("/v1/usage", cancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal(HttpStatusCode.OK, known.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, unknown.StatusCode);
    }

    [Fact]
    public async Task Swagger_ServesUiAndADocumentWithSchemasEnumsDefaultsExamplesAndKeyAuth()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var client = harness.Client(key: null);
        using var ui = await client.GetAsync("/swagger/index.html", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, ui.StatusCode);

        using var response = await client.GetAsync("/swagger/v1/swagger.json", TestContext.Current.CancellationToken);
        var document = await response.JsonAsync();
        var paths = document["paths"]!.AsObject();
        foreach (var path in new[] { "/v1/generations", "/v1/edits", "/v1/generations/{id}", "/v1/generations/{id}/status", "/v1/generations/{id}/result", "/v1/generations/{id}/cancel" })
        {
            Assert.True(paths.ContainsKey(path), $"missing {path}");
        }

        var schemas = document["components"]!["schemas"]!;
        var generate = schemas["GenerateRequest"]!["properties"]!;
        Assert.Equal(11, generate["aspect_ratio"]!["enum"]!.AsArray().Count);
        Assert.EndsWith("Default: \"auto\".", generate["aspect_ratio"]!["description"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Null(generate["aspect_ratio"]!["default"]); // a generated client would make the field required
        Assert.Equal(3, generate["output_format"]!["enum"]!.AsArray().Count);
        Assert.NotNull(generate["prompt"]!["example"]);
        Assert.Equal(8, schemas["EditRequest"]!["properties"]!["aspect_ratio"]!["enum"]!.AsArray().Count);
        Assert.False(schemas["GenerateRequest"]!["additionalProperties"]?.GetValue<bool>() ?? true, "unknown fields are refused");
        var security = document["components"]!["securitySchemes"]!;
        Assert.Equal("bearer", security["Bearer"]!["scheme"]!.GetValue<string>());
        Assert.Equal("X-Api-Key", security["ApiKey"]!["name"]!.GetValue<string>());
    }

    [Fact]
    public async Task Playground_IsAPageThatSubmitsWithTheClientKey()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        using var response = await harness.Client(key: null).GetAsync("/", TestContext.Current.CancellationToken);
        var html = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType!.MediaType);
        Assert.Contains("<form id=\"form\">", html, StringComparison.Ordinal);
        Assert.Contains("\"/v1/generations\"", html, StringComparison.Ordinal);
        Assert.Contains("X-Api-Key", html, StringComparison.Ordinal);
        Assert.Equal(11, System.Text.RegularExpressions.Regex.Count(html[html.IndexOf("id=\"aspect_ratio\"", StringComparison.Ordinal)..html.IndexOf("id=\"num_images\"", StringComparison.Ordinal)], "<option>"));
    }

    /// <summary>Outside the routes the framework answers, with the same problem every route gives (checked against the contract too).</summary>
    [Fact]
    public async Task UnknownRouteOrMethod_AnswersAProblemThatSaysWhat()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var client = harness.Client();
        using var missing = await client.GetAsync("/v1/nope", TestContext.Current.CancellationToken);
        var notFound = await missing.JsonAsync();
        using var wrongMethod = await client.DeleteAsync("/v1/generations", TestContext.Current.CancellationToken);
        var notAllowed = await wrongMethod.JsonAsync();

        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("urn:mai-image-gateway:problem:not-found", notFound["type"]!.GetValue<string>());
        Assert.Contains("/v1/nope", notFound["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, wrongMethod.StatusCode);
        Assert.Equal("/v1/generations does not take DELETE; it takes GET, POST.", notAllowed["detail"]!.GetValue<string>());
        Assert.NotNull(notAllowed["trace_id"]);
    }

    [Fact]
    public async Task Swagger_CanBeSwitchedOff()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: new Dictionary<string, string?> { ["Gateway:SwaggerEnabled"] = "false" });
        using var response = await harness.Client(key: null).GetAsync("/swagger/v1/swagger.json", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    public static TheoryData<string, string, string> BadConfigurations => new()
    {
        { "Fal__Key", "", "Fal__Key" },
        { "Clients__alpha__KeySha256", "not-hex", "Clients__alpha__KeySha256" },
        { "Gateway__PublicBaseUrl", "ftp://example", "Gateway__PublicBaseUrl" },
        { "Fal__QueueBaseUrl", "not a url", "Fal__QueueBaseUrl" },
        { "ConnectionStrings__Redis", "127.0.0.1:6379,unknownoption=1,=", "ConnectionStrings__Redis" },
        { "Gateway__LinkSigningKey", "c2hvcnQ=", "Gateway__LinkSigningKey" },
        { "Cors__AllowedOrigins__0", "https://design.corp.example/app", "Cors__AllowedOrigins__0" },
        { "Auth__Oidc__Authority", "http://login.corp.example/tenant/v2.0", "Auth__Oidc__RequireHttpsMetadata" },
        { "Clients__alpha__PerUser__ImagesPerDay", "0", "Clients__alpha__PerUser__ImagesPerDay" },
        { "Clients__alpha__KeySha256s__1", "0123-not-hex", "Clients__alpha__KeySha256s__1" },
        { "Gateway__SecretsPath", "/nonexistent/gateway-secrets", "Gateway__SecretsPath" },
        { "Images__Store", "Bucket", "Images__Store must be None, FileSystem or AzureBlob" },
        { "Images__Store", "AzureBlob", "Images__AzureBlob__ConnectionString or Images__AzureBlob__ServiceUri" },
        { "Images__FalExpiration", "00:00:00", "FalExpiration" },

        // Read while the host is built (HostOptions, Kestrel, Serilog, the stand-in switch, OpenAPI): out of range or unparsable.
        { "Gateway__ShutdownTimeout", "-5", "Gateway__ShutdownTimeout" },
        { "Gateway__ShutdownTimeout", "banana", "Gateway__ShutdownTimeout" },
        { "Gateway__ShutdownDrainDelay", "00:09:00", "Gateway__ShutdownDrainDelay" },
        { "Gateway__ShutdownDrainDelay", "banana", "Gateway__ShutdownDrainDelay" },
        { "Gateway__MaxRequestBodyBytes", "5", "Gateway__MaxRequestBodyBytes" },
        { "Gateway__MaxRequestBodyBytes", "banana", "Gateway__MaxRequestBodyBytes" },
        { "Gateway__SwaggerEnabled", "banana", "Gateway__SwaggerEnabled" },
        { "Serilog__ConsoleMinimumLevel", "banana", "Serilog__ConsoleMinimumLevel" },
        { "Serilog__MinimumLevel__Default", "banana", "Serilog__MinimumLevel__Default" },
        { "Serilog__MinimumLevel", "banana", "Serilog__MinimumLevel" },
        { "Serilog__MinimumLevel__Override__Microsoft", "banana", "Serilog__MinimumLevel__Override__Microsoft" },
        { "Fal__UseEmulator", "banana", "Fal__UseEmulator" },
        { "OTEL_EXPORTER_OTLP_ENDPOINT", "not a url", "OTEL_EXPORTER_OTLP_ENDPOINT" },

        // Read when the host starts: unparsable values of every kind (duration, whole number, switch, amount).
        { "Fal__AttemptTimeout", "banana", "Fal__AttemptTimeout" },
        { "Gateway__ResultTtl", "banana", "Gateway__ResultTtl" },
        { "Gateway__MaxUploadBytes", "banana", "Gateway__MaxUploadBytes" },
        { "Limits__RequestsPerMinute", "banana", "Limits__RequestsPerMinute" },
        { "Limits__PricePerImageUsd", "banana", "Limits__PricePerImageUsd" },
        { "Idempotency__Ttl", "banana", "Idempotency__Ttl" },
        { "Clients__alpha__RequestsPerMinute", "banana", "Clients__alpha__RequestsPerMinute" },
        { "Clients__alpha__PerUser__ImagesPerDay", "banana", "Clients__alpha__PerUser__ImagesPerDay" },
        { "Auth__Oidc__RequireHttpsMetadata", "banana", "Auth__Oidc__RequireHttpsMetadata" },
        { "Webhooks__MaxBodyBytes", "banana", "Webhooks__MaxBodyBytes" },
        { "FalProxy__AllowRun", "banana", "FalProxy__AllowRun" },
        { "Images__CopyAttempts", "banana", "Images__CopyAttempts" },
        { "ConnectionStrings__Redis", "127.0.0.1:6379,password=sekrit-pw,connectTimeout=banana", "ConnectionStrings__Redis" },
        { "ConnectionStrings__Redis", "127.0.0.1:6379,password=sekrit-pw,ssl=perhaps", "ConnectionStrings__Redis" },
    };

    /// <summary>
    /// What an operator sees: the real process, started with one bad setting, stops with exit code 1 and a line
    /// naming the setting, not a crash (an unhandled exception aborts with 134 and a stack trace).
    /// </summary>
    [Theory]
    [MemberData(nameof(BadConfigurations))]
    public async Task Start_WithBadConfiguration_ExitsWithAMessageNamingTheSetting(string variable, string value, string named)
    {
        var environment = ValidEnvironment();
        environment[variable] = value;
        var (exitCode, output) = await RunGatewayProcessAsync(environment);
        Assert.True(exitCode == 1, $"exit code {exitCode}: {output}");
        Assert.Contains(output.Split('\n'), line => line.StartsWith("  - ", StringComparison.Ordinal) && line.Contains(named, StringComparison.Ordinal));
        Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"(?m)^\s+at \S+\(", output);

        // Not in a log line's exception either (the console is JSON here: a stack would sit in "@x").
        Assert.DoesNotMatch(@"\bat (Microsoft|System|Gateway|Serilog)\.\S+\(", output);
        Assert.DoesNotContain("sekrit-pw", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_InProductionWithoutClients_ExitsNamingTheSetting()
    {
        var environment = ValidEnvironment();
        environment.Remove("Clients__alpha__KeySha256");
        var (exitCode, output) = await RunGatewayProcessAsync(environment);
        Assert.NotEqual(0, exitCode);
        Assert.True(output.Contains("Clients__{name}__KeySha256", StringComparison.Ordinal), output);
    }

    /// <summary>The stand-in answers with fake images: outside Development it must not start, whatever the build.</summary>
    [Fact]
    public async Task Start_InProductionWithTheStandIn_ExitsNamingFalUseEmulator()
    {
        var environment = ValidEnvironment();
        environment["Fal__UseEmulator"] = "true";
        var (exitCode, output) = await RunGatewayProcessAsync(environment);
        Assert.True(exitCode == 1, $"exit code {exitCode}: {output}");
        Assert.Contains("Fal__UseEmulator=true is refused in the Production environment", output, StringComparison.Ordinal);
        Assert.DoesNotContain("fal stand-in running", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_WithAnInvalidImageContainerOrSasWithoutTheAccountKey_ExitsNamingTheSettings()
    {
        var environment = ValidEnvironment();
        environment["Images__Store"] = "AzureBlob";
        environment["Images__AzureBlob__ServiceUri"] = "https://account.blob.core.windows.net";
        environment["Images__AzureBlob__Container"] = "Not_A_Container";
        environment["Images__AzureBlob__SasLinks"] = "true";
        var (exitCode, output) = await RunGatewayProcessAsync(environment);
        Assert.True(exitCode == 1, $"exit code {exitCode}: {output}");
        Assert.Contains("Images__AzureBlob__Container must be a container name", output, StringComparison.Ordinal);
        Assert.Contains("Images__AzureBlob__SasLinks=true signs with the account key", output, StringComparison.Ordinal);
    }

    private static Dictionary<string, string> ValidEnvironment() => new()
    {
        ["ASPNETCORE_ENVIRONMENT"] = "Production",
        ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{RedisServer.FreePort()}",
        ["Fal__Key"] = "some-fal-key",
        ["Clients__alpha__KeySha256"] = GatewayHarness.Sha256("k"),
    };

    /// <summary>Runs the built gateway (Gateway.dll beside the tests) until it exits (it must, within 30 s).</summary>
    private static async Task<(int ExitCode, string Output)> RunGatewayProcessAsync(Dictionary<string, string> environment)
    {
        var start = new System.Diagnostics.ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "Gateway.dll")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("The gateway did not stop on a bad setting: " + await stdout);
        }

        return (process.ExitCode, await stdout + await stderr);
    }

    [Fact]
    public async Task Start_InDevelopmentWithoutClients_AcceptsTheDocumentedLocalKey()
    {
        var settings = ValidSettings();
        settings.Remove("Clients:alpha:KeySha256");
        await using var emulator = await FalEmulator.FalEmulatorHost.StartAsync(new FalEmulator.FalEmulatorOptions { Key = "k", ImageLongSide = 32 }, cancellationToken: TestContext.Current.CancellationToken);
        settings["Fal:Key"] = "k";
        settings["Fal:QueueBaseUrl"] = emulator.QueueBaseUrl;
        settings["Fal:UseEmulator"] = "false";
        await using var gateway = new GatewayApplication(settings, environment: "Development");
        var url = gateway.Start();
        using var client = new HttpClient { BaseAddress = url };
        client.DefaultRequestHeaders.Authorization = new("Bearer", "dev-local-key");
        using var response = await client.PostJsonAsync("/v1/generations", new { prompt = "local" });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
    }

    private static Dictionary<string, string?> ValidSettings() => new()
    {
        ["Fal:Key"] = "some-fal-key",
        ["Clients:alpha:KeySha256"] = GatewayHarness.Sha256("k"),
        ["ConnectionStrings:Redis"] = "",
        ["Serilog:ConsoleMinimumLevel"] = "Fatal",
    };

}
