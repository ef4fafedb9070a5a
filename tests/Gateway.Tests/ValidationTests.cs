using System.Net;
using System.Text;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests;

/// <summary>Every rule refuses with 400 problem+json naming the field, and nothing reaches fal.</summary>
public sealed class ValidationTests(RedisServer redis)
{
    public static TheoryData<string, string, string> InvalidBodies => new()
    {
        { "/v1/generations", """{}""", "prompt" },
        { "/v1/generations", """{"prompt":""}""", "prompt" },
        { "/v1/generations", """{"prompt":"   "}""", "prompt" },
        { "/v1/generations", """{"prompt":null}""", "prompt" },
        { "/v1/generations", """{"prompt":"x","num_images":0}""", "num_images" },
        { "/v1/generations", """{"prompt":"x","num_images":5}""", "num_images" },
        { "/v1/generations", """{"prompt":"x","num_images":"two"}""", "num_images" },
        { "/v1/generations", """{"prompt":"x","num_images":1.5}""", "num_images" },
        { "/v1/generations", """{"prompt":"x","aspect_ratio":"7:3"}""", "aspect_ratio" },
        { "/v1/generations", """{"prompt":"x","aspect_ratio":"16:10"}""", "aspect_ratio" },
        { "/v1/generations", """{"prompt":"x","output_format":"gif"}""", "output_format" },
        { "/v1/generations", """{"prompt":"x","output_format":"PNG"}""", "output_format" },
        { "/v1/generations", """{"prompt":"x","sync_mode":"yes"}""", "sync_mode" },
        { "/v1/generations", """{"prompt":"x","seed":42}""", "seed" },
        { "/v1/generations", """{"prompt":"x","image_urls":["https://a/b.png"]}""", "image_urls" },
        { "/v1/generations", """{"prompt":123}""", "prompt" },
        { "/v1/edits", """{"prompt":"x"}""", "image_urls" },
        { "/v1/edits", """{"prompt":"x","image_urls":[]}""", "image_urls" },
        { "/v1/edits", """{"image_urls":["https://a.example/b.png"]}""", "prompt" },
        { "/v1/edits", """{"prompt":"x","image_urls":["ftp://a.example/b.png"]}""", "image_urls[0]" },
        { "/v1/edits", """{"prompt":"x","image_urls":["/relative.png"]}""", "image_urls[0]" },
        { "/v1/edits", """{"prompt":"x","image_urls":["https://user:pw@a.example/b.png"]}""", "image_urls[0]" },
        { "/v1/edits", """{"prompt":"x","image_urls":["https://a.example/ok.png","data:text/plain;base64,aGk="]}""", "image_urls[1]" },
        { "/v1/edits", """{"prompt":"x","image_urls":["data:image/png;base64,@@@"]}""", "image_urls[0]" },
        { "/v1/edits", """{"prompt":"x","image_urls":["data:image/png,rawbytes"]}""", "image_urls[0]" },
        { "/v1/edits", """{"prompt":"x","image_urls":["https://a.example/b.png"],"aspect_ratio":"21:9"}""", "aspect_ratio" },
        { "/v1/edits", """{"prompt":"x","image_urls":["https://a.example/b.png"],"aspect_ratio":"5:4"}""", "aspect_ratio" },
        { "/v1/edits", """{"prompt":"x","image_urls":"https://a.example/b.png"}""", "image_urls" },
    };

    [Theory]
    [MemberData(nameof(InvalidBodies))]
    public async Task Submit_WithInvalidField_Returns400NamingTheField(string route, string body, string field)
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        using var response = await harness.Client().PostJsonAsync(route, body);
        var problem = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        Assert.True(problem["errors"]?[field] is not null, $"expected an error for '{field}', got {problem}");
        Assert.StartsWith("urn:mai-image-gateway:problem:", problem["type"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.NotNull(problem["trace_id"]);
        Assert.Equal(400, problem["status"]!.GetValue<int>());
        Assert.Equal(0, harness.Fal.SubmitCount);
    }

    [Fact]
    public async Task Submit_PromptLongerThanConfiguredMaximum_Returns400NamingPrompt()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: new Dictionary<string, string?> { ["Gateway:MaxPromptLength"] = "20" });
        using var ok = await harness.Client().PostJsonAsync("/v1/generations", new { prompt = new string('a', 20) });
        Assert.Equal(HttpStatusCode.Accepted, ok.StatusCode);

        using var response = await harness.Client().PostJsonAsync("/v1/generations", new { prompt = new string('a', 21) });
        var problem = await response.JsonAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("at most 20", problem["errors"]!["prompt"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(1, harness.Fal.SubmitCount);
    }

    [Fact]
    public async Task Edit_DataUriOverTheSizeCap_Returns400NamingTheEntry()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: new Dictionary<string, string?> { ["Gateway:MaxImageDataUriBytes"] = "1000" });
        var big = "data:image/png;base64," + Convert.ToBase64String(new byte[1001]);
        using var response = await harness.Client().PostJsonAsync("/v1/edits", new { prompt = "x", image_urls = new[] { GenerationFlowTests.TinyPngDataUri(), big } });
        var problem = await response.JsonAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("limit is 1000", problem["errors"]!["image_urls[1]"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(0, harness.Fal.SubmitCount);
    }

    [Fact]
    public async Task Submit_MalformedJson_Returns400NamingBody()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        using var response = await harness.Client().PostJsonAsync("/v1/generations", """{"prompt":"x",""");
        var problem = await response.JsonAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.EndsWith("malformed-json", problem["type"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.NotNull(problem["errors"]!["body"]);
        Assert.Equal(0, harness.Fal.SubmitCount);
    }

    [Fact]
    public async Task Submit_EmptyBody_Returns400NamingBody()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        using var response = await harness.Client().PostAsync("/v1/generations",
            new StringContent("", Encoding.UTF8, "application/json"), TestContext.Current.CancellationToken);
        var problem = await response.JsonAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.NotNull(problem["errors"]!["body"]);
        Assert.Equal(0, harness.Fal.SubmitCount);
    }

    [Fact]
    public async Task Submit_WrongContentType_Returns415NamingContentType()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        using var response = await harness.Client().PostAsync("/v1/generations",
            new StringContent("""{"prompt":"x"}""", Encoding.UTF8, "text/plain"), TestContext.Current.CancellationToken);
        var problem = await response.JsonAsync();
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        Assert.NotNull(problem["errors"]!["Content-Type"]);
        Assert.Equal(0, harness.Fal.SubmitCount);
    }

    [Fact]
    public async Task Submit_BodyOverTheLimit_Returns413NamingBody()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: new Dictionary<string, string?> { ["Gateway:MaxRequestBodyBytes"] = "2048" });
        using var response = await harness.Client().PostJsonAsync("/v1/generations", new { prompt = new string('a', 4096) });
        var problem = await response.JsonAsync();
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.EndsWith("body-too-large", problem["type"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.NotNull(problem["errors"]!["body"]);
        Assert.Equal(0, harness.Fal.SubmitCount);
    }

    [Fact]
    public async Task Submit_SendsOnlyTheFieldsTheCallerSet_InFalsNames()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        // output_format null is "not sent": fal gets no null, and no default the caller did not choose.
        await harness.Client().SubmitAsync(new { prompt = "exact \"quoted\" ünïcode", num_images = 2, aspect_ratio = "4:5", output_format = (string?)null });
        var submit = harness.Fal.Requests.Single(r => r.Method == "POST");
        Assert.Equal("/microsoft/mai-image-2.5", submit.PathAndQuery);
        Assert.Equal($"Key {harness.FalKey}", submit.Headers["Authorization"]);
        GatewayHarness.AssertSameJson("""{"prompt":"exact \"quoted\" ünïcode","num_images":2,"aspect_ratio":"4:5"}""", harness.ForwardedSubmit().Body);
    }

    [Fact]
    public async Task Submit_WithEveryField_SendsEachInFalsNames()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        await harness.Client().SubmitAsync(new { prompt = "all", num_images = 4, aspect_ratio = "21:9", output_format = "webp", sync_mode = true });
        GatewayHarness.AssertSameJson("""{"prompt":"all","num_images":4,"aspect_ratio":"21:9","output_format":"webp","sync_mode":true}""",
            harness.ForwardedSubmit().Body);
    }

    [Fact]
    public async Task Edit_SendsOnlyTheFieldsTheCallerSet_ToTheEditModel()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var image = GenerationFlowTests.TinyPngDataUri();
        await harness.Client().SubmitAsync(
            new { prompt = "make it blue", image_urls = new[] { image }, output_format = "jpeg" }, "/v1/edits");
        var (path, body) = harness.ForwardedSubmit();
        Assert.Equal("/microsoft/mai-image-2.5/edit", path);
        GatewayHarness.AssertSameJson($$"""{"prompt":"make it blue","image_urls":["{{image}}"],"output_format":"jpeg"}""", body);
    }
}
