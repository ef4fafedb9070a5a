using System.Net;
using Gateway.Tests.Infrastructure;
using SkiaSharp;

namespace Gateway.Tests;

public sealed class GenerationFlowTests(RedisServer redis)
{
    public static TheoryData<string, string, string> ModelsAndFormats => new()
    {
        { "/v1/generations", "png", "image/png" },
        { "/v1/generations", "jpeg", "image/jpeg" },
        { "/v1/generations", "webp", "image/webp" },
        { "/v1/edits", "png", "image/png" },
        { "/v1/edits", "jpeg", "image/jpeg" },
        { "/v1/edits", "webp", "image/webp" },
    };

    [Theory]
    [MemberData(nameof(ModelsAndFormats))]
    public async Task Submit_PollStatus_ThenResult_ReturnsRealImagesInTheRequestedFormat(string route, string format, string contentType)
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var client = harness.Client();
        var edit = route == "/v1/edits";
        object body = edit
            ? new { prompt = "make it blue", image_urls = new[] { TinyPngDataUri() }, output_format = format, num_images = 2, aspect_ratio = "16:9" }
            : new { prompt = "a lighthouse", output_format = format, num_images = 2, aspect_ratio = "16:9" };

        using var submit = await client.PostJsonAsync(route, body);
        var accepted = await submit.JsonAsync();
        Assert.Equal(HttpStatusCode.Accepted, submit.StatusCode);
        var id = accepted["id"]!.GetValue<string>();
        Assert.Equal($"/v1/generations/{id}", submit.Headers.Location!.OriginalString);
        Assert.Equal(edit ? "microsoft/mai-image-2.5/edit" : "microsoft/mai-image-2.5", accepted["model"]!.GetValue<string>());
        Assert.Equal("IN_QUEUE", accepted["status"]!.GetValue<string>());
        Assert.Null(accepted["completed_at"]);
        Assert.Equal($"/v1/generations/{id}/events", accepted["links"]!["events"]!.GetValue<string>());

        var done = await client.WaitUntilDoneAsync(id);
        Assert.Equal("COMPLETED", done["status"]!.GetValue<string>());

        using var resultResponse = await client.GetAsync($"/v1/generations/{id}/result", TestContext.Current.CancellationToken);
        var result = await resultResponse.JsonAsync();
        Assert.Equal(HttpStatusCode.OK, resultResponse.StatusCode);
        var images = result["images"]!.AsArray();
        Assert.Equal(2, images.Count);
        foreach (var image in images)
        {
            Assert.Equal(contentType, image!["content_type"]!.GetValue<string>());
            var bytes = await new HttpClient().GetByteArrayAsync(image["url"]!.GetValue<string>(), TestContext.Current.CancellationToken);
            using var bitmap = SKBitmap.Decode(bytes);
            Assert.NotNull(bitmap);
            Assert.Equal(image["width"]!.GetValue<int>(), bitmap.Width);
            Assert.Equal(16.0 / 9, (double)bitmap.Width / bitmap.Height, 1);
            Assert.Equal(format, SKCodec.Create(new SKMemoryStream(bytes)).EncodedFormat.ToString().ToLowerInvariant().Replace("jpeg", "jpeg", StringComparison.Ordinal));
        }

        using var generation = await client.GetAsync($"/v1/generations/{id}", TestContext.Current.CancellationToken);
        var full = await generation.JsonAsync();
        Assert.Equal("COMPLETED", full["status"]!.GetValue<string>());
        Assert.NotNull(full["completed_at"]);
        Assert.Equal(result.ToJsonString(), full["result"]!.ToJsonString());
        Assert.Equal(1, harness.Fal.AcceptedSubmitCount);
    }

    [Fact]
    public async Task Result_WhilePending_Returns202WithRetryAfterAndStatus()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(5));
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "slow one" });

        using var response = await client.GetAsync($"/v1/generations/{id}/result", TestContext.Current.CancellationToken);
        var status = await response.JsonAsync();
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("1", response.Headers.GetValues("Retry-After").Single());
        Assert.Contains(status["status"]!.GetValue<string>(), new[] { "IN_QUEUE", "IN_PROGRESS" });
        Assert.Equal(id, status["id"]!.GetValue<string>());
    }

    [Fact]
    public async Task Status_WithLogs_IncludesFalLogs()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "logs please" });
        await client.WaitUntilDoneAsync(id);

        using var response = await client.GetAsync($"/v1/generations/{id}/status?logs=true", TestContext.Current.CancellationToken);
        var status = await response.JsonAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.NotNull(status["logs"]);
    }

    [Fact]
    public async Task Status_WhenQueueIsFull_ReportsQueuePosition()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, e => { e.MaxConcurrent = 1; e.RunTime = TimeSpan.FromSeconds(3); });
        var client = harness.Client();
        await client.SubmitAsync(new { prompt = "first" });
        await client.SubmitAsync(new { prompt = "second" });
        var third = await client.SubmitAsync(new { prompt = "third" });
        await Task.Delay(300, TestContext.Current.CancellationToken);

        using var response = await client.GetAsync($"/v1/generations/{third}/status", TestContext.Current.CancellationToken);
        var status = await response.JsonAsync();
        Assert.Equal("IN_QUEUE", status["status"]!.GetValue<string>());
        Assert.True(status["queue_position"]!.GetValue<int>() >= 1, status.ToJsonString());
    }

    [Fact]
    public async Task Cancel_WhileQueued_Returns202_ThenGenerationFails_AndCancelAgainIs409()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, e => { e.MaxConcurrent = 1; e.RunTime = TimeSpan.FromSeconds(2); });
        var client = harness.Client();
        await client.SubmitAsync(new { prompt = "blocker" });
        var id = await client.SubmitAsync(new { prompt = "to cancel" });

        using var cancel = await client.PostAsync($"/v1/generations/{id}/cancel", null, TestContext.Current.CancellationToken);
        var body = await cancel.JsonAsync();
        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        Assert.Equal("CANCELLATION_REQUESTED", body["status"]!.GetValue<string>());

        var done = await client.WaitUntilDoneAsync(id);
        Assert.Equal("FAILED", done["status"]!.GetValue<string>());

        using var again = await client.PostAsync($"/v1/generations/{id}/cancel", null, TestContext.Current.CancellationToken);
        var problem = await again.JsonAsync();
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Equal("application/problem+json", again.Content.Headers.ContentType!.MediaType);
        Assert.EndsWith("already-completed", problem["type"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task FailedJob_ResultIsTheFailureAsProblem_WithFalStatusAndFieldErrors()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "forbidden thing [[fault:content_policy@result]]" });
        var done = await client.WaitUntilDoneAsync(id);
        Assert.Equal("FAILED", done["status"]!.GetValue<string>());

        using var result = await client.GetAsync($"/v1/generations/{id}/result", TestContext.Current.CancellationToken);
        var problem = await result.JsonAsync();
        Assert.Equal(HttpStatusCode.UnprocessableEntity, result.StatusCode);
        Assert.Equal("application/problem+json", result.Content.Headers.ContentType!.MediaType);
        Assert.Equal(422, problem["fal_status"]!.GetValue<int>());

        using var generation = await client.GetAsync($"/v1/generations/{id}", TestContext.Current.CancellationToken);
        var full = await generation.JsonAsync();
        Assert.Equal("FAILED", full["status"]!.GetValue<string>());
        Assert.Null(full["result"]);
        Assert.Equal(422, full["error"]!["fal_status"]!.GetValue<int>());
        Assert.EndsWith("generation-failed", full["error"]!["type"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SyncMode_ReturnsDataUris()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "inline", sync_mode = true });
        await client.WaitUntilDoneAsync(id);
        using var response = await client.GetAsync($"/v1/generations/{id}/result", TestContext.Current.CancellationToken);
        var result = await response.JsonAsync();
        var url = result["images"]![0]!["url"]!.GetValue<string>();
        Assert.StartsWith("data:image/png;base64,", url, StringComparison.Ordinal);
        using var bitmap = SKBitmap.Decode(Convert.FromBase64String(url["data:image/png;base64,".Length..]));
        Assert.NotNull(bitmap);
    }

    [Fact]
    public async Task InMemoryStore_WithoutRedis_RunsTheWholePath()
    {
        await using var harness = await GatewayHarness.StartAsync(redis: null);
        var client = harness.Client();
        var id = await client.SubmitAsync(new { prompt = "no redis" });
        var done = await client.WaitUntilDoneAsync(id);
        Assert.Equal("COMPLETED", done["status"]!.GetValue<string>());
        Assert.Contains("in memory", harness.Logs(), StringComparison.Ordinal);
    }

    internal static string TinyPngDataUri()
    {
        using var bitmap = new SKBitmap(8, 6);
        bitmap.Erase(SKColors.OrangeRed);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return "data:image/png;base64," + Convert.ToBase64String(data.ToArray());
    }
}
