using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gateway.Tests.Infrastructure;
using SkiaSharp;

namespace Gateway.Tests.Faults;

/// <summary>
/// Issue 9, points 6–8: edit inputs that cannot be images, more than one image, and binding looser than the
/// contract. Each refusal is a 400 problem naming the field on /v1, fal's 422 shape naming the same field on
/// the proxy, and nothing reaches fal.
/// </summary>
public sealed class StrictBindingTests(RedisServer redis)
{
    private const string Model = "https://queue.fal.run/microsoft/mai-image-2.5";
    private const string Edit = "https://queue.fal.run/microsoft/mai-image-2.5/edit";
    private const string Hosted = "https://a.example/in.png";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string, string, string> RefusedBodies => new()
    {
        // 6: a data URI must decode to a PNG, JPEG, WebP or GIF that matches its declared type.
        { "/v1/edits", """{"prompt":"x","image_urls":["data:image/png;base64,AAAA"]}""", "image_urls[0]" },
        { "/v1/edits", Body(DataUri("image/gif", "not an image, only text"u8.ToArray())), "image_urls[0]" },
        { "/v1/edits", Body(DataUri("image/png", Jpeg())), "image_urls[0]" },
        { "/v1/edits", Body(GenerationFlowTests.TinyPngDataUri().Insert(40, "\n")), "image_urls[0]" },
        // 6: a hosted URL with whitespace or control characters (the CR/LF ones were passed on to fal).
        { "/v1/edits", Body(Hosted + "\r\nX-Injected: 1"), "image_urls[0]" },
        { "/v1/edits", Body("https://a.example/in put.png"), "image_urls[0]" },
        { "/v1/edits", Body(" " + Hosted), "image_urls[0]" },
        { "/v1/edits", Body(Hosted + "\t"), "image_urls[0]" },
        { "/v1/edits", Body("https://a.example/\u0000.png"), "image_urls[0]" },
        { "/v1/edits", Body("https://a.example/\u0085.png"), "image_urls[0]" },
        // 7: fal's edit model takes one image.
        { "/v1/edits", Body(Hosted, "https://a.example/second.png"), "image_urls" },
        // 8: property names are case-sensitive. A required field sent in the wrong case is named as missing (unknown
        // fields are reported once the fields themselves are valid); an optional one is named as unknown.
        { "/v1/generations", """{"PROMPT":"x"}""", "prompt" },
        { "/v1/edits", $$"""{"prompt":"x","Image_Urls":["{{Hosted}}"]}""", "image_urls" },
        { "/v1/generations", """{"prompt":"x","Num_Images":2}""", "Num_Images" },
        { "/v1/generations", """{"prompt":"x","OUTPUT_FORMAT":"png"}""", "OUTPUT_FORMAT" },
        // 8: numbers are JSON numbers.
        { "/v1/generations", """{"prompt":"x","num_images":"4"}""", "num_images" },
        { "/v1/edits", $$"""{"prompt":"x","image_urls":["{{Hosted}}"],"num_images":"2"}""", "num_images" },
        // 8: duplicate properties are refused, not resolved (last wins).
        { "/v1/generations", """{"prompt":"a cat","prompt":"a dog"}""", "prompt" },
        { "/v1/generations", """{"prompt":"x","num_images":1,"num_images":4}""", "num_images" },
        { "/v1/edits", $$"""{"prompt":"x","image_urls":["{{Hosted}}"],"image_urls":["https://a.example/b.png"]}""", "image_urls" },
        // 8: a prompt holds visible text and no control characters but tab, CR and LF.
        { "/v1/generations", """{"prompt":"\u0000"}""", "prompt" },
        { "/v1/generations", """{"prompt":"a lighthouse\u0007"}""", "prompt" },
        { "/v1/generations", """{"prompt":"a lighthouse\u007f"}""", "prompt" },
        { "/v1/generations", """{"prompt":"\u200b\u200b"}""", "prompt" },
        { "/v1/generations", """{"prompt":"\t\r\n"}""", "prompt" },
        { "/v1/edits", $$"""{"prompt":"\u001b[31m","image_urls":["{{Hosted}}"]}""", "prompt" },
    };

    [Theory]
    [MemberData(nameof(RefusedBodies))]
    public async Task RefusedInput_V1Answers400_ProxyAnswers422InFalsShape_BothNamingTheField_AndNothingReachesFal(string route, string body, string field)
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var client = harness.Client();

        using var v1 = await client.PostJsonAsync(route, body);
        var problem = await v1.JsonAsync();
        using var proxied = await FalProxyTests.ProxyAsync(client, HttpMethod.Post, route == "/v1/edits" ? Edit : Model, body);
        var fal = await proxied.JsonAsync();

        Assert.Equal(HttpStatusCode.BadRequest, v1.StatusCode);
        Assert.Equal("application/problem+json", v1.Content.Headers.ContentType!.MediaType);
        Assert.True(problem["errors"]?[field] is not null, $"expected an error for '{field}', got {problem}");
        Assert.StartsWith("urn:mai-image-gateway:problem:", problem["type"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, proxied.StatusCode);
        Assert.Equal("application/json", proxied.Content.Headers.ContentType?.MediaType);
        Assert.True(FalFields(fal).Contains(field), $"expected fal's detail to name '{field}', got {fal}");
        Assert.Empty(harness.Fal.Requests);
    }

    [Fact]
    public async Task AcceptedInput_TabsLineBreaksAndEmojiInPrompt_OneImage_EncodedUrl_AndJsonWithCharset_AllReachFal()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var client = harness.Client();
        var png = GenerationFlowTests.TinyPngDataUri();

        await client.SubmitAsync(new { prompt = "line one\n\tline two\r\nwith a 🐈" });
        await client.SubmitAsync(new { prompt = "make it blue", image_urls = new[] { png } }, "/v1/edits");
        await client.SubmitAsync(new { prompt = "make it blue", image_urls = new[] { DataUri("image/jpg", Jpeg()) } }, "/v1/edits");
        await client.SubmitAsync(new { prompt = "make it blue", image_urls = new[] { "http://127.0.0.1:9/in%0D%0A%00.png" } }, "/v1/edits");
        foreach (var (target, json, type) in new[]
        {
            (Model, """{"prompt":"a lighthouse"}""", "application/json"),
            (Model, """{"prompt":"a lighthouse"}""", "application/json; charset=utf-8"),
            (Model, """{"prompt":"a lighthouse"}""", "Application/JSON;Charset=\"UTF-8\""),
            (Edit, Body(png), "application/json"),
        })
        {
            using var response = await FalProxyTests.ProxyAsync(client, HttpMethod.Post, target, json, r => ContentType(r, type));
            var answer = await response.JsonAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{type} {json} answered {(int)response.StatusCode}: {answer}");
        }

        Assert.Equal(8, harness.Fal.AcceptedSubmitCount);
    }

    [Theory]
    [InlineData(Model, "text/plain")]
    [InlineData(Model, "text/plain; charset=utf-8")]
    [InlineData(Model, "image/png")]
    [InlineData(Model, "multipart/form-data; boundary=b")]
    [InlineData(Model, "application/x-www-form-urlencoded")]
    [InlineData(Model, "application/json; charset=iso-8859-1")]
    [InlineData(Model, null)]
    [InlineData(Edit, "text/plain")]
    public async Task ProxiedSubmit_WithoutJsonContentType_Returns415InFalsShape_AndNothingReachesFal(string target, string? type)
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var json = target == Edit ? Body(Hosted) : """{"prompt":"a lighthouse"}""";

        using var response = await FalProxyTests.ProxyAsync(harness.Client(), HttpMethod.Post, target, json, r => ContentType(r, type));
        var body = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("application/json", body["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Empty(harness.Fal.Requests);
    }

    [Fact]
    public async Task Edit_WithTwoImages_WhenTheGatewayAllowsTwo_IsRefusedByFalsStandIn_As422NamingImageUrls()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: new Dictionary<string, string?> { ["Gateway:MaxImageUrls"] = "2" });

        using var response = await harness.Client().PostJsonAsync("/v1/edits", Body(Hosted, "https://a.example/second.png"));
        var problem = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.EndsWith("upstream-rejected", problem["type"]!.GetValue<string>(), StringComparison.Ordinal);
        var message = problem["errors"]?["image_urls"]?[0]?.GetValue<string>() ?? "";
        Assert.True(message.StartsWith("List should have at most 1 item", StringComparison.Ordinal), $"got {problem}");
        Assert.Equal(1, harness.Fal.SubmitCount);
        Assert.Equal(0, harness.Fal.AcceptedSubmitCount);
    }

    [Fact]
    public void MaxImageUrls_DefaultsToOne_InTheOptionsAndInAppsettings()
    {
        var appsettings = JsonNode.Parse(File.ReadAllText(Path.Combine(Process.ProcessGateway.RepoRoot, "appsettings.json")))!;

        Assert.Equal(1, new Gateway.Generations.GenerationOptions().MaxImageUrls);
        Assert.Equal(1, appsettings["Gateway"]!["MaxImageUrls"]!.GetValue<int>());
    }

    /// <summary>An edit body holding <paramref name="urls"/>, JSON-escaped.</summary>
    private static string Body(params string[] urls) =>
        $$"""{"prompt":"x","image_urls":{{JsonSerializer.Serialize(urls)}}}""";

    private static string DataUri(string mediaType, byte[] bytes) => $"data:{mediaType};base64,{Convert.ToBase64String(bytes)}";

    private static byte[] Jpeg()
    {
        using var bitmap = new SKBitmap(8, 6);
        bitmap.Erase(SKColors.SeaGreen);
        using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90);
        return data.ToArray();
    }

    /// <summary>Replaces the body's Content-Type (null: none at all).</summary>
    private static void ContentType(HttpRequestMessage request, string? type)
    {
        request.Content!.Headers.Remove("Content-Type");
        if (type is not null)
        {
            request.Content.Headers.TryAddWithoutValidation("Content-Type", type);
        }
    }

    /// <summary>The fields fal's 422 names, spelled as /v1 names them: <c>["body","image_urls",0]</c> → <c>image_urls[0]</c>.</summary>
    private static HashSet<string> FalFields(JsonNode body) =>
        (body["detail"] as JsonArray ?? []).Select(error => string.Concat(error!["loc"]!.AsArray().Skip(1)
                .Select(n => n!.GetValueKind() == JsonValueKind.Number ? $"[{n}]" : "." + n))
            .TrimStart('.'))
            .ToHashSet();
}
