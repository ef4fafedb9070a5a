using System.Net;
using System.Text.Json;

namespace FalEmulator.Tests;

public sealed class QueueTests
{
    [Fact]
    public async Task Submit_Valid_Returns200WithQueueUrlsAndRequestIdHeader()
    {
        await using var emulator = await Emulator.Start();

        var (response, body) = await emulator.Submit(new { prompt = "a red fox" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var id = body.GetProperty("request_id").GetString()!;
        Assert.True(Guid.TryParse(id, out _));
        Assert.Equal(id, response.Headers.GetValues("x-fal-request-id").Single());
        var root = emulator.Host.QueueBaseUrl;
        Assert.Equal($"{root}/microsoft/mai-image-2.5/requests/{id}", body.GetProperty("response_url").GetString());
        Assert.Equal($"{root}/microsoft/mai-image-2.5/requests/{id}/status", body.GetProperty("status_url").GetString());
        Assert.Equal($"{root}/microsoft/mai-image-2.5/requests/{id}/cancel", body.GetProperty("cancel_url").GetString());
        Assert.Equal("IN_QUEUE", body.GetProperty("status").GetString());
        Assert.Equal(0, body.GetProperty("queue_position").GetInt32());
        Assert.False(string.IsNullOrEmpty(body.GetProperty("gateway_request_id").GetString()));
    }

    [Fact]
    public async Task Submit_ToEdit_ReturnsUrlsOnOwnerAppOnly()
    {
        await using var emulator = await Emulator.Start();

        var body = await emulator.Accepted(new { prompt = "make it blue", image_urls = new[] { TestImages.PngDataUri(20, 10) } }, Emulator.EditModel);

        var id = body.GetProperty("request_id").GetString();
        Assert.Equal($"{emulator.Host.QueueBaseUrl}/microsoft/mai-image-2.5/requests/{id}", body.GetProperty("response_url").GetString());
    }

    [Fact]
    public async Task Status_WhileQueued_Returns202WithQueuePosition()
    {
        await using var emulator = await Emulator.Start(o =>
        {
            o.MaxConcurrent = 1;
            o.RunTime = TimeSpan.FromSeconds(30);
        });

        var first = await emulator.Accepted(new { prompt = "one" });
        var second = await emulator.Accepted(new { prompt = "two" });
        var third = await emulator.Accepted(new { prompt = "three" });
        await WaitForStatus(emulator, first, "IN_PROGRESS");

        var (secondResponse, secondStatus) = await emulator.Get(second.GetProperty("status_url").GetString()!);
        var (thirdResponse, thirdStatus) = await emulator.Get(third.GetProperty("status_url").GetString()!);

        Assert.Equal(HttpStatusCode.Accepted, secondResponse.StatusCode);
        Assert.Equal("IN_QUEUE", secondStatus.GetProperty("status").GetString());
        Assert.Equal(0, secondStatus.GetProperty("queue_position").GetInt32());
        Assert.Equal(HttpStatusCode.Accepted, thirdResponse.StatusCode);
        Assert.Equal("IN_QUEUE", thirdStatus.GetProperty("status").GetString());
        Assert.Equal(1, thirdStatus.GetProperty("queue_position").GetInt32());
        Assert.Equal(third.GetProperty("response_url").GetString(), thirdStatus.GetProperty("response_url").GetString());
    }

    [Fact]
    public async Task Status_Progresses_FromInQueue_ToInProgress_ToCompletedWithLogsAndMetrics()
    {
        await using var emulator = await Emulator.Start(o =>
        {
            o.QueueTime = TimeSpan.FromMilliseconds(300);
            o.RunTime = TimeSpan.FromMilliseconds(400);
        });
        var submitted = await emulator.Accepted(new { prompt = "a lighthouse" });
        var statusUrl = submitted.GetProperty("status_url").GetString()!;

        var (queuedResponse, queued) = await emulator.Get(statusUrl);
        Assert.Equal(HttpStatusCode.Accepted, queuedResponse.StatusCode);
        Assert.Equal("IN_QUEUE", queued.GetProperty("status").GetString());

        var running = await WaitForStatus(emulator, submitted, "IN_PROGRESS", "?logs=1");
        Assert.Contains(running.GetProperty("logs").EnumerateArray(), l => l.GetProperty("level").GetString() == "INFO"
            && l.TryGetProperty("message", out _) && l.TryGetProperty("source", out _) && l.TryGetProperty("timestamp", out _));

        var completed = await emulator.WaitCompleted(submitted, "?logs=1");
        Assert.True(completed.GetProperty("logs").GetArrayLength() >= 2);
        Assert.True(completed.GetProperty("metrics").GetProperty("inference_time").GetDouble() > 0.3);
        Assert.False(completed.TryGetProperty("error", out _));
    }

    [Fact]
    public async Task Status_WithoutLogsQuery_OmitsLogs()
    {
        await using var emulator = await Emulator.Start();
        var submitted = await emulator.Accepted(new { prompt = "quiet" });

        var completed = await emulator.WaitCompleted(submitted);

        Assert.False(completed.TryGetProperty("logs", out _));
    }

    [Fact]
    public async Task Result_WhilePending_Returns400StillInProgress()
    {
        await using var emulator = await Emulator.Start(o => o.RunTime = TimeSpan.FromSeconds(5));
        var submitted = await emulator.Accepted(new { prompt = "slowly" });

        var (response, body) = await emulator.Result(submitted);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("Request is still in progress", body.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Result_WhenCompleted_ReturnsImagesAndDescription()
    {
        await using var emulator = await Emulator.Start();

        var result = await emulator.CompletedResult(new { prompt = "a harbour", num_images = 3 });

        Assert.Equal(3, result.GetProperty("images").GetArrayLength());
        Assert.Contains("a harbour", result.GetProperty("description").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("status")]
    [InlineData("")]
    [InlineData("status/stream")]
    public async Task Calls_ForUnknownRequest_Return404(string suffix)
    {
        await using var emulator = await Emulator.Start();

        var url = $"microsoft/mai-image-2.5/requests/{Guid.NewGuid()}/{suffix}".TrimEnd('/');
        var (response, body) = await emulator.Get(url);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("not found", body.GetProperty("detail").GetString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Status_UnderAnotherApp_Returns404()
    {
        await using var emulator = await Emulator.Start();
        var submitted = await emulator.Accepted(new { prompt = "x" });

        var (response, _) = await emulator.Get($"fal-ai/flux/requests/{submitted.GetProperty("request_id").GetString()}/status");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task Submit_ToUnknownApp_Returns404NamingTheApplication()
    {
        await using var emulator = await Emulator.Start();

        var (response, body) = await emulator.Submit(new { prompt = "x" }, "fal-ai/flux/dev");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("Application 'fal-ai/flux/dev' not found", body.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Submit_WithWrongKey_Returns401()
    {
        await using var emulator = await Emulator.Start();
        using var request = new HttpRequestMessage(HttpMethod.Post, Emulator.Model) { Content = Emulator.JsonBody(new { prompt = "x" }) };
        request.Headers.TryAddWithoutValidation("Authorization", "Key test-key-id:wrong");

        using var response = await emulator.Anonymous.SendAsync(request, Emulator.Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.False(string.IsNullOrEmpty((await Emulator.ReadJson(response)).GetProperty("detail").GetString()));
        Assert.Equal(1, emulator.State.SubmitCount);
        Assert.Equal(0, emulator.State.AcceptedSubmitCount);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("Bearer test-key-id:test-key-secret")]
    [InlineData("Key test-key-id")]
    public async Task Calls_WithoutTheKey_Return401(string? authorization)
    {
        await using var emulator = await Emulator.Start();
        var submitted = await emulator.Accepted(new { prompt = "x" });

        foreach (var (method, url) in new[]
        {
            (HttpMethod.Post, Emulator.Model),
            (HttpMethod.Get, submitted.GetProperty("status_url").GetString()!),
            (HttpMethod.Get, submitted.GetProperty("response_url").GetString()!),
            (HttpMethod.Put, submitted.GetProperty("cancel_url").GetString()!),
            (HttpMethod.Post, "run/" + Emulator.Model),
            (HttpMethod.Post, "rest/storage/upload/initiate?storage_type=fal-cdn-v3"),
        })
        {
            using var request = new HttpRequestMessage(method, url) { Content = Emulator.JsonBody(new { prompt = "x" }) };
            if (authorization is not null)
            {
                request.Headers.TryAddWithoutValidation("Authorization", authorization);
            }

            using var response = await emulator.Anonymous.SendAsync(request, Emulator.Ct);

            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{method} {url} answered {response.StatusCode}");
            Assert.True((await Emulator.ReadJson(response)).TryGetProperty("detail", out _));
        }
    }

    [Theory]
    [InlineData("""{"num_images":1}""", "body.prompt", "missing")]
    [InlineData("""{"prompt":""}""", "body.prompt", "string_too_short")]
    [InlineData("""{"prompt":42}""", "body.prompt", "string_type")]
    [InlineData("""{"prompt":"x","num_images":0}""", "body.num_images", "greater_than_equal")]
    [InlineData("""{"prompt":"x","num_images":5}""", "body.num_images", "less_than_equal")]
    [InlineData("""{"prompt":"x","num_images":"two"}""", "body.num_images", "int_type")]
    [InlineData("""{"prompt":"x","aspect_ratio":"7:5"}""", "body.aspect_ratio", "literal_error")]
    [InlineData("""{"prompt":"x","output_format":"gif"}""", "body.output_format", "literal_error")]
    [InlineData("""{"prompt":"x","sync_mode":"yes"}""", "body.sync_mode", "bool_type")]
    [InlineData("not json", "body", "model_attributes_type")]
    public async Task Submit_WithInvalidInput_Returns422NamingTheField(string json, string loc, string type)
    {
        await using var emulator = await Emulator.Start();

        using var response = await emulator.Client.PostAsync(Emulator.Model,
            new StringContent(json, System.Text.Encoding.UTF8, "application/json"), Emulator.Ct);
        var body = await Emulator.ReadJson(response);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var issue = Emulator.OnlyIssue(body);
        Assert.Equal(loc, Emulator.Loc(issue));
        Assert.Equal(type, issue.GetProperty("type").GetString());
        Assert.False(string.IsNullOrEmpty(issue.GetProperty("msg").GetString()));
        Assert.Equal(0, emulator.State.AcceptedSubmitCount);
    }

    [Theory]
    [InlineData("""{"prompt":"x"}""", "body.image_urls", "missing")]
    [InlineData("""{"prompt":"x","image_urls":[]}""", "body.image_urls", "too_short")]
    [InlineData("""{"prompt":"x","image_urls":["not a url"]}""", "body.image_urls.0", "url_parsing")]
    [InlineData("""{"prompt":"x","image_urls":["https://example.com/a.png","https://example.com/b.png"]}""", "body.image_urls", "too_long")]
    [InlineData("""{"prompt":"x","image_urls":["https://example.com/a.png"],"aspect_ratio":"21:9"}""", "body.aspect_ratio", "literal_error")]
    public async Task SubmitEdit_WithInvalidInput_Returns422NamingTheField(string json, string loc, string type)
    {
        await using var emulator = await Emulator.Start();

        using var response = await emulator.Client.PostAsync(Emulator.EditModel,
            new StringContent(json, System.Text.Encoding.UTF8, "application/json"), Emulator.Ct);
        var issue = Emulator.OnlyIssue(await Emulator.ReadJson(response));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal(loc, Emulator.Loc(issue));
        Assert.Equal(type, issue.GetProperty("type").GetString());
    }

    [Fact]
    public async Task SubmitEdit_WithTwoImages_Returns422TooLong_AsFalDoes()
    {
        await using var emulator = await Emulator.Start();

        var (response, body) = await emulator.Submit(
            new { prompt = "x", image_urls = new[] { TestImages.PngDataUri(4, 4), TestImages.PngDataUri(4, 4) } }, Emulator.EditModel);
        var issue = Emulator.OnlyIssue(body);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal("body.image_urls", Emulator.Loc(issue));
        Assert.Equal("too_long", issue.GetProperty("type").GetString());
        Assert.StartsWith("List should have at most 1 item", issue.GetProperty("msg").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, issue.GetProperty("ctx").GetProperty("max_length").GetInt32());
        Assert.Equal(0, emulator.State.AcceptedSubmitCount);
    }

    [Fact]
    public async Task Submit_WithSeveralProblems_ReportsEach()
    {
        await using var emulator = await Emulator.Start();

        var (response, body) = await emulator.Submit(new { num_images = 9, output_format = "bmp" });

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var locs = body.GetProperty("detail").EnumerateArray().Select(Emulator.Loc).ToList();
        Assert.Equal(["body.prompt", "body.num_images", "body.output_format"], locs);
    }

    [Fact]
    public async Task Submit_WithUnknownFields_IgnoresThem()
    {
        await using var emulator = await Emulator.Start();

        var (response, _) = await emulator.Submit(new { prompt = "x", seed = 42, guidance_scale = 3.5, enable_safety_checker = true });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Submit_BeyondMaxQueueLength_Returns429()
    {
        await using var emulator = await Emulator.Start(o => o.QueueTime = TimeSpan.FromSeconds(5));
        await emulator.Accepted(new { prompt = "one" });

        var (response, body) = await emulator.Submit(new { prompt = "two" }, query: "?fal_max_queue_length=1");

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Equal("queue_full", body.GetProperty("error_type").GetString());
    }

    [Fact]
    public async Task Cancel_WhileQueued_Returns202_AndJobEndsCancelledWith499Result()
    {
        await using var emulator = await Emulator.Start(o => o.QueueTime = TimeSpan.FromSeconds(5));
        var submitted = await emulator.Accepted(new { prompt = "never mind" });

        using var cancel = await emulator.Client.PutAsync(submitted.GetProperty("cancel_url").GetString(), null, Emulator.Ct);
        var cancelBody = await Emulator.ReadJson(cancel);

        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        Assert.Equal("CANCELLATION_REQUESTED", cancelBody.GetProperty("status").GetString());
        var status = await emulator.WaitCompleted(submitted);
        Assert.Equal("Request cancelled", status.GetProperty("error").GetString());
        Assert.Equal("request_cancelled", status.GetProperty("error_type").GetString());
        var (result, resultBody) = await emulator.Result(submitted);
        Assert.Equal(499, (int)result.StatusCode);
        Assert.Equal("Request cancelled", resultBody.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Cancel_WhileRunning_Returns202_AndTheJobStillCompletes()
    {
        await using var emulator = await Emulator.Start(o => o.RunTime = TimeSpan.FromMilliseconds(600));
        var submitted = await emulator.Accepted(new { prompt = "too late" });
        await WaitForStatus(emulator, submitted, "IN_PROGRESS");

        using var cancel = await emulator.Client.PutAsync(submitted.GetProperty("cancel_url").GetString(), null, Emulator.Ct);

        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        Assert.Equal("CANCELLATION_REQUESTED", (await Emulator.ReadJson(cancel)).GetProperty("status").GetString());
        await emulator.WaitCompleted(submitted);
        var (result, _) = await emulator.Result(submitted);
        Assert.Equal(HttpStatusCode.OK, result.StatusCode);
    }

    [Fact]
    public async Task Cancel_WhenCompleted_Returns400AlreadyCompleted()
    {
        await using var emulator = await Emulator.Start();
        var submitted = await emulator.Accepted(new { prompt = "done" });
        await emulator.WaitCompleted(submitted);

        using var cancel = await emulator.Client.PutAsync(submitted.GetProperty("cancel_url").GetString(), null, Emulator.Ct);

        Assert.Equal(HttpStatusCode.BadRequest, cancel.StatusCode);
        Assert.Equal("ALREADY_COMPLETED", (await Emulator.ReadJson(cancel)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task Cancel_UnknownRequest_Returns404NotFound()
    {
        await using var emulator = await Emulator.Start();

        using var cancel = await emulator.Client.PutAsync($"microsoft/mai-image-2.5/requests/{Guid.NewGuid()}/cancel", null, Emulator.Ct);

        Assert.Equal(HttpStatusCode.NotFound, cancel.StatusCode);
        Assert.Equal("NOT_FOUND", (await Emulator.ReadJson(cancel)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task StatusStream_SendsDataEventsPerChange_PingsBetween_AndClosesAfterCompleted()
    {
        await using var emulator = await Emulator.Start(o =>
        {
            o.QueueTime = TimeSpan.FromMilliseconds(250);
            o.RunTime = TimeSpan.FromMilliseconds(400);
            o.StreamPingInterval = TimeSpan.FromMilliseconds(100);
        });
        var submitted = await emulator.Accepted(new { prompt = "streamed" });

        using var response = await emulator.Client.GetAsync(submitted.GetProperty("status_url").GetString() + "/stream?logs=1",
            HttpCompletionOption.ResponseHeadersRead, Emulator.Ct);
        var text = await response.Content.ReadAsStringAsync(Emulator.Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.EndsWith("\n\n", text, StringComparison.Ordinal);
        var frames = text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(": ping", frames);
        var statuses = frames.Where(f => f.StartsWith("data: ", StringComparison.Ordinal))
            .Select(f => JsonDocument.Parse(f["data: ".Length..]).RootElement.GetProperty("status").GetString())
            .ToList();
        Assert.Equal("IN_QUEUE", statuses[0]);
        Assert.Contains("IN_PROGRESS", statuses);
        Assert.Equal("COMPLETED", statuses[^1]);
        Assert.Single(statuses, s => s == "COMPLETED");
        Assert.Equal(1, emulator.State.StatusCallsFor(submitted.GetProperty("request_id").GetString()!));
    }

    [Fact]
    public async Task Run_AnswersTheOutputDirectly()
    {
        await using var emulator = await Emulator.Start();

        using var response = await emulator.Client.PostAsync("run/" + Emulator.Model,
            Emulator.JsonBody(new { prompt = "synchronous", num_images = 2, output_format = "jpeg" }), Emulator.Ct);
        var body = await Emulator.ReadJson(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, body.GetProperty("images").GetArrayLength());
        Assert.Equal("image/jpeg", body.GetProperty("images")[0].GetProperty("content_type").GetString());
        Assert.Equal(1, emulator.State.RunCount);
        Assert.Equal(0, emulator.State.SubmitCount);
    }

    [Fact]
    public async Task CompleteNow_FinishesAQueuedJobAtOnce()
    {
        await using var emulator = await Emulator.Start(o =>
        {
            o.QueueTime = TimeSpan.FromSeconds(30);
            o.RunTime = TimeSpan.FromSeconds(30);
        });
        var submitted = await emulator.Accepted(new { prompt = "hurry" });

        emulator.State.CompleteNow(submitted.GetProperty("request_id").GetString()!);
        var status = await emulator.WaitCompleted(submitted);

        Assert.False(status.TryGetProperty("error", out _));
        Assert.Equal(HttpStatusCode.OK, (await emulator.Result(submitted)).Response.StatusCode);
    }

    [Fact]
    public async Task RequestTimeout_ExpiringInQueue_EndsWith504UserTimeout()
    {
        await using var emulator = await Emulator.Start(o => o.QueueTime = TimeSpan.FromSeconds(30));
        using var request = new HttpRequestMessage(HttpMethod.Post, Emulator.Model) { Content = Emulator.JsonBody(new { prompt = "impatient" }) };
        request.Headers.Add("X-Fal-Request-Timeout", "0.2");
        using var submit = await emulator.Client.SendAsync(request, Emulator.Ct);
        var submitted = await Emulator.ReadJson(submit);

        var status = await emulator.WaitCompleted(submitted);
        var (result, body) = await emulator.Result(submitted);

        Assert.Equal("request_timeout", status.GetProperty("error_type").GetString());
        Assert.Equal(HttpStatusCode.GatewayTimeout, result.StatusCode);
        Assert.Equal("user", result.Headers.GetValues("X-Fal-Request-Timeout-Type").Single());
        Assert.Equal("request_timeout", body.GetProperty("error_type").GetString());
    }

    internal static async Task<JsonElement> WaitForStatus(Emulator emulator, JsonElement submitted, string status, string query = "")
    {
        var url = submitted.GetProperty("status_url").GetString() + query;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        var last = "";
        while (DateTime.UtcNow < deadline)
        {
            var (_, body) = await emulator.Get(url);
            if (body.GetProperty("status").GetString() == status)
            {
                return body;
            }

            last = body.GetRawText();
            await Task.Delay(10, Emulator.Ct);
        }

        throw new TimeoutException($"never saw {status}; last answer {last}");
    }
}
