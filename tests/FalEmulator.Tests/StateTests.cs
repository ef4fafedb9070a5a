using System.Net;
using System.Text.Json;

namespace FalEmulator.Tests;

public sealed class StateTests
{
    [Fact]
    public async Task Counters_CountEachKindOfCall()
    {
        await using var emulator = await Emulator.Start();
        var submitted = await emulator.Accepted(new { prompt = "counted" });
        await emulator.Submit(new { prompt = "" });
        var id = submitted.GetProperty("request_id").GetString()!;
        await emulator.WaitCompleted(submitted);
        await emulator.Result(submitted);
        await emulator.Result(submitted);
        using var cancel = await emulator.Client.PutAsync(submitted.GetProperty("cancel_url").GetString(), null, Emulator.Ct);
        using var upload = await emulator.Client.PostAsync("rest/storage/upload/initiate?storage_type=fal-cdn-v3",
            Emulator.JsonBody(new { content_type = "image/png", file_name = "a.png" }), Emulator.Ct);

        Assert.Equal(2, emulator.State.SubmitCount);
        Assert.Equal(1, emulator.State.AcceptedSubmitCount);
        Assert.True(emulator.State.StatusCallCount >= 1);
        Assert.Equal(emulator.State.StatusCallCount, emulator.State.StatusCallsFor(id));
        Assert.Equal(2, emulator.State.ResultCallCount);
        Assert.Equal(2, emulator.State.ResultCallsFor(id));
        Assert.Equal(0, emulator.State.ResultCallsFor("other"));
        Assert.Equal(1, emulator.State.CancelCount);
        Assert.Equal(1, emulator.State.UploadCount);
    }

    [Fact]
    public async Task Requests_AreRecordedInOrder_WithHeadersAndBodyLength()
    {
        await using var emulator = await Emulator.Start();
        var submitted = await emulator.Accepted(new { prompt = "recorded" });
        await emulator.Get(submitted.GetProperty("status_url").GetString() + "?logs=1");

        var requests = emulator.State.Requests;

        Assert.Equal(2, requests.Count);
        Assert.Equal("POST", requests[0].Method);
        Assert.Equal("/microsoft/mai-image-2.5", requests[0].PathAndQuery);
        Assert.Equal($"Key {emulator.Options.Key}", requests[0].Headers["Authorization"]);
        Assert.Equal(JsonSerializer.Serialize(new { prompt = "recorded" }).Length, requests[0].BodyLength);
        Assert.Equal("GET", requests[1].Method);
        Assert.EndsWith("/status?logs=1", requests[1].PathAndQuery, StringComparison.Ordinal);
        Assert.True(requests[0].At <= requests[1].At);
    }

    [Fact]
    public async Task Requests_KeepASmallJsonBodyAsText_NotALargeOneNorAGet()
    {
        await using var emulator = await Emulator.Start();
        var submitted = await emulator.Accepted(new { prompt = "kept", num_images = 2 });
        var large = new string('x', 70_000);
        await emulator.Submit(new { prompt = "too large to keep", image_urls = new[] { "https://example.com/" + large } }, Emulator.EditModel);
        await emulator.Get(submitted.GetProperty("status_url").GetString()!);

        var requests = emulator.State.Requests;

        Assert.Equal("""{"prompt":"kept","num_images":2}""", requests[0].Body);
        Assert.Null(requests[1].Body);
        Assert.True(requests[1].BodyLength > 70_000, $"BodyLength {requests[1].BodyLength}");
        Assert.Null(requests[2].Body);
    }

    [Fact]
    public async Task Reset_ClearsCountersRequestsAndFaults_ButKeepsJobs()
    {
        await using var emulator = await Emulator.Start();
        var submitted = await emulator.Accepted(new { prompt = "kept" });
        emulator.State.AddFault(new FaultRule { Operation = FalOperation.Status, Kind = "500" });

        emulator.State.Reset();
        var status = await emulator.WaitCompleted(submitted);

        Assert.Equal("COMPLETED", status.GetProperty("status").GetString());
        Assert.Equal(0, emulator.State.SubmitCount);
        Assert.Empty(emulator.State.Faults);
        Assert.All(emulator.State.Requests, r => Assert.Contains("/status", r.PathAndQuery, StringComparison.Ordinal));
    }

    [Fact]
    public async Task ControlEndpoints_AddFault_Stats_ClearAndReset_NeedNoKey()
    {
        await using var emulator = await Emulator.Start();

        using var add = await emulator.Anonymous.PostAsync("_emulator/faults",
            Emulator.JsonBody(new { operation = "Submit", kind = "503", count = 1 }), Emulator.Ct);
        var (faulted, _) = await emulator.Submit(new { prompt = "x" });
        using var stats = await emulator.Anonymous.GetAsync("_emulator/stats", Emulator.Ct);
        var statsBody = await Emulator.ReadJson(stats);
        using var clear = await emulator.Anonymous.DeleteAsync("_emulator/faults", Emulator.Ct);
        using var reset = await emulator.Anonymous.PostAsync("_emulator/reset", null, Emulator.Ct);

        Assert.Equal(HttpStatusCode.OK, add.StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, faulted.StatusCode);
        Assert.Equal(HttpStatusCode.OK, stats.StatusCode);
        Assert.Equal(1, statsBody.GetProperty("submit_count").GetInt32());
        Assert.Equal(0, statsBody.GetProperty("accepted_submit_count").GetInt32());
        Assert.Equal(HttpStatusCode.OK, clear.StatusCode);
        Assert.Equal(HttpStatusCode.OK, reset.StatusCode);
        Assert.Equal(0, emulator.State.SubmitCount);
        Assert.DoesNotContain(emulator.State.Requests, r => r.PathAndQuery.StartsWith("/_emulator", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ControlEndpoints_AddFault_WithUnknownKind_Returns400()
    {
        await using var emulator = await Emulator.Start();

        using var add = await emulator.Anonymous.PostAsync("_emulator/faults",
            Emulator.JsonBody(new { operation = "Webhook", kind = "500" }), Emulator.Ct);

        Assert.Equal(HttpStatusCode.BadRequest, add.StatusCode);
        Assert.Contains("500", (await Emulator.ReadJson(add)).GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Host_ExposesTheFalBaseUrls()
    {
        await using var emulator = await Emulator.Start();
        var root = emulator.Host.BaseUrl.ToString().TrimEnd('/');

        Assert.Equal("127.0.0.1", emulator.Host.BaseUrl.Host);
        Assert.NotEqual(0, emulator.Host.BaseUrl.Port);
        Assert.Equal(root, emulator.Host.QueueBaseUrl);
        Assert.Equal(root + "/rest", emulator.Host.RestBaseUrl);
        Assert.Equal(root + "/run", emulator.Host.RunBaseUrl);
        Assert.Equal(root + "/rest/.well-known/jwks.json", emulator.Host.JwksUrl);
    }
}
