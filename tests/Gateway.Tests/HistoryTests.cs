using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests;

public sealed class HistoryTests(RedisServer redis)
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Pages_NeverRepeatOrSkipAnItem_WhileNewGenerationsArrive(bool withRedis)
    {
        var client = new TestClient();
        await using var harness = await GatewayHarness.StartAsync(withRedis ? redis : null, settings: client.Settings, replicas: withRedis ? 2 : 1);
        var http = harness.Client(client.Key);
        var before = new ConcurrentBag<string>();
        await Parallel.ForEachAsync(Enumerable.Range(0, 30), new ParallelOptions { MaxDegreeOfParallelism = 6 },
            async (i, _) => before.Add(await http.SubmitAsync(new { prompt = $"before {i}" })));

        using var stop = new CancellationTokenSource();
        var writer = harness.Client(client.Key, replica: withRedis ? 1 : 0);
        var during = new ConcurrentBag<string>();
        var arriving = Task.Run(async () =>
        {
            for (var i = 0; i < 15; i++)
            {
                during.Add(await writer.SubmitAsync(new { prompt = $"during {i}" }));
            }
        }, TestContext.Current.CancellationToken);

        var seen = new List<JsonNode>();
        string? cursor = null;
        do
        {
            using var response = await http.GetAsync($"/v1/generations?limit=4{(cursor is null ? "" : "&cursor=" + cursor)}", TestContext.Current.CancellationToken);
            var page = await response.JsonAsync();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var items = page["items"]!.AsArray();
            Assert.True(items.Count <= 4);
            seen.AddRange(items.Select(i => i!));
            cursor = page["next_cursor"]?.GetValue<string>();
            await Task.Delay(10, TestContext.Current.CancellationToken); // let the writer interleave
        }
        while (cursor is not null);
        await arriving;

        var ids = seen.Select(i => i["id"]!.GetValue<string>()).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.Superset(before.ToHashSet(), ids.ToHashSet());
        AssertNewestFirst(seen);

        Assert.All(seen, item =>
        {
            Assert.Equal("microsoft/mai-image-2.5", item["model"]!.GetValue<string>());
            Assert.Contains(item["status"]!.GetValue<string>(), new[] { "IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED" });
            Assert.Equal($"/v1/generations/{item["id"]!.GetValue<string>()}", item["links"]!["self"]!.GetValue<string>());
        });

        // Everything, newest first, once more: the 15 that arrived meanwhile lead.
        using var all = await http.GetAsync("/v1/generations?limit=100", TestContext.Current.CancellationToken);
        var everything = (await all.JsonAsync())["items"]!.AsArray().Select(i => i!["id"]!.GetValue<string>()).ToList();
        Assert.Equal(45, everything.Count);
        Assert.Equal(during.ToHashSet(), everything.Take(15).ToHashSet());
        Assert.Null((await (await http.GetAsync("/v1/generations?limit=100", TestContext.Current.CancellationToken)).JsonAsync())["next_cursor"]);
    }

    [Fact]
    public async Task Pages_OfGenerationsCreatedInTheSameMillisecond_BreakTiesByIdWithoutRepeats()
    {
        var client = new TestClient();
        var time = FakeTime.At("2026-11-24T12:00:00Z"); // never moved: every generation has the same created_at
        await using var harness = await GatewayHarness.StartAsync(redis, settings: client.Settings, services: FakeTime.Use(time));
        var http = harness.Client(client.Key);
        var ids = new List<string>();
        for (var i = 0; i < 9; i++)
        {
            ids.Add(await http.SubmitAsync(new { prompt = $"tie {i}" }));
        }

        var seen = new List<JsonNode>();
        string? cursor = null;
        do
        {
            var page = await (await http.GetAsync($"/v1/generations?limit=2{(cursor is null ? "" : "&cursor=" + cursor)}", TestContext.Current.CancellationToken)).JsonAsync();
            seen.AddRange(page["items"]!.AsArray().Select(i => i!));
            cursor = page["next_cursor"]?.GetValue<string>();
        }
        while (cursor is not null);

        Assert.Equal(ids.OrderDescending(StringComparer.Ordinal), seen.Select(i => i["id"]!.GetValue<string>()));
        AssertNewestFirst(seen);
    }

    [Fact]
    public async Task List_ShowsOnlyTheCallersGenerations_NewestFirst_WithDefaultLimit20()
    {
        var mine = new TestClient();
        var theirs = new TestClient();
        await using var harness = await GatewayHarness.StartAsync(redis, settings: mine.With([.. theirs.Settings.Select(p => (p.Key, p.Value))]));
        var http = harness.Client(mine.Key);
        var ids = new List<string>();
        for (var i = 0; i < 22; i++)
        {
            ids.Add(await http.SubmitAsync(new { prompt = $"mine {i}" }));
        }

        await harness.Client(theirs.Key).SubmitAsync(new { prompt = "not yours" });

        using var response = await http.GetAsync("/v1/generations", TestContext.Current.CancellationToken);
        var page = await response.JsonAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var listed = page["items"]!.AsArray().Select(i => i!["id"]!.GetValue<string>()).ToList();
        Assert.Equal(20, listed.Count);
        Assert.Equal(ids[^1], listed[0]); // submitted one after another, so strictly newest first
        Assert.NotNull(page["next_cursor"]);

        using var rest = await http.GetAsync($"/v1/generations?cursor={page["next_cursor"]!.GetValue<string>()}", TestContext.Current.CancellationToken);
        var second = await rest.JsonAsync();
        Assert.Equal(ids.Take(2).Reverse(), second["items"]!.AsArray().Select(i => i!["id"]!.GetValue<string>()));
        Assert.Null(second["next_cursor"]);
    }

    [Theory]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=101", "limit")]
    [InlineData("cursor=bm90LWEtY3Vyc29y", "cursor")]
    [InlineData("cursor=%25%25%25", "cursor")]
    public async Task List_WithABadLimitOrCursor_Returns400NamingIt(string query, string field)
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        using var response = await harness.Client().GetAsync($"/v1/generations?{query}", TestContext.Current.CancellationToken);
        var problem = await response.JsonAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("urn:mai-image-gateway:problem:validation", problem["type"]!.GetValue<string>());
        Assert.Equal(field, problem.Field());
    }

    /// <summary>
    /// A gallery page needs one request: each item carries its prompt, the options chosen and, once completed, its images
    /// (fal's URLs as stored; a sync_mode result's data URIs are not repeated, the result link stands in for them).
    /// </summary>
    [Fact]
    public async Task List_ItemsCarryPromptOptionsAndImages_SoAGalleryNeedsOneRequest()
    {
        var client = new TestClient();
        await using var harness = await GatewayHarness.StartAsync(redis, settings: client.Settings);
        var http = harness.Client(client.Key);
        var stored = await http.SubmitAsync(new { prompt = "a lighthouse at dusk", num_images = 2, aspect_ratio = "16:9", output_format = "jpeg" });
        var inline = await http.SubmitAsync(new { prompt = "inline please", sync_mode = true });
        var edit = await http.SubmitAsync(new { prompt = "make it blue", image_urls = new[] { GenerationFlowTests.TinyPngDataUri() } }, "/v1/edits");
        var failed = await http.SubmitAsync(new { prompt = "forbidden thing [[fault:content_policy@result]]" });
        foreach (var id in new[] { stored, inline, edit, failed })
        {
            await http.WaitUntilDoneAsync(id);
        }

        var pending = await http.SubmitAsync(new { prompt = "still running [[run:60000]]" });
        var result = await (await http.GetAsync($"/v1/generations/{stored}/result", Ct)).JsonAsync();

        using var response = await http.GetAsync("/v1/generations", Ct);
        var items = (await response.JsonAsync())["items"]!.AsArray().ToDictionary(i => i!["id"]!.GetValue<string>(), i => i!);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var first = items[stored];
        Assert.Equal("a lighthouse at dusk", first["prompt"]!.GetValue<string>());
        GatewayHarness.AssertSameJson("""{"num_images":2,"aspect_ratio":"16:9","output_format":"jpeg"}""", first["options"]!);
        var images = first["images"]!.AsArray();
        Assert.Equal(2, images.Count);
        Assert.Equal(result["images"]!.AsArray().Select(i => i!["url"]!.GetValue<string>()), images.Select(i => i!["url"]!.GetValue<string>()));
        Assert.All(images, image =>
        {
            Assert.StartsWith("http", image!["url"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.False(image["data_uri"]!.GetValue<bool>());
            Assert.True(image["width"]!.GetValue<int>() > 0 && image["height"]!.GetValue<int>() > 0);
        });

        var second = items[inline];
        GatewayHarness.AssertSameJson("""{"sync_mode":true}""", second["options"]!);
        var inlineImage = Assert.Single(second["images"]!.AsArray())!;
        Assert.Equal($"/v1/generations/{inline}/result", inlineImage["url"]!.GetValue<string>());
        Assert.True(inlineImage["data_uri"]!.GetValue<bool>());
        Assert.DoesNotContain("data:", second.ToJsonString(), StringComparison.Ordinal);

        Assert.Equal("make it blue", items[edit]["prompt"]!.GetValue<string>());
        Assert.Equal("microsoft/mai-image-2.5/edit", items[edit]["model"]!.GetValue<string>());
        Assert.Single(items[edit]["images"]!.AsArray());
        Assert.DoesNotContain("data:", items[edit].ToJsonString(), StringComparison.Ordinal); // nor the input image

        Assert.Equal("FAILED", items[failed]["status"]!.GetValue<string>());
        Assert.Null(items[failed]["images"]);
        Assert.NotNull(items[failed]["error"]);
        Assert.Equal("still running [[run:60000]]", items[pending]["prompt"]!.GetValue<string>());
        Assert.Null(items[pending]["images"]);
        GatewayHarness.AssertSameJson("{}", items[pending]["options"]!);
    }

    /// <summary>A generation that completed before records kept their images still shows them, read from its stored result.</summary>
    [Fact]
    public async Task List_OfARecordWithoutImages_ReadsThemFromTheStoredResult()
    {
        var client = new TestClient();
        await using var harness = await GatewayHarness.StartAsync(redis, settings: client.Settings);
        var http = harness.Client(client.Key);
        var id = await http.SubmitAsync(new { prompt = "older record", num_images = 2 });
        await http.WaitUntilDoneAsync(id);
        var result = await (await http.GetAsync($"/v1/generations/{id}/result", Ct)).JsonAsync();

        await using (var connection = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(harness.RedisConnectionString!))
        {
            var key = Gateway.Storage.RedisKeys.Generation(id);
            var record = JsonNode.Parse((string)(await connection.GetDatabase().StringGetAsync(key))!)!.AsObject();
            Assert.True(record.Remove("images") && record.Remove("prompt") && record.Remove("options"), record.ToJsonString());
            await connection.GetDatabase().StringSetAsync(key, record.ToJsonString(), TimeSpan.FromMinutes(5));
        }

        // A replica that has not read the generation yet: the first one keeps the ended record it has read in its cache.
        await using var other = await GatewayHarness.StartAsync(redis: null,
            settings: client.With(("ConnectionStrings:Redis", harness.RedisConnectionString)));
        var item = (await (await other.Client(client.Key).GetAsync("/v1/generations", Ct)).JsonAsync())["items"]!.AsArray().Single()!;
        Assert.Equal(result["images"]!.AsArray().Select(i => i!["url"]!.GetValue<string>()), item["images"]!.AsArray().Select(i => i!["url"]!.GetValue<string>()));
        Assert.Null(item["prompt"]);
        GatewayHarness.AssertSameJson("{}", item["options"]!);
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Strictly newest first: by created_at (in ms, as stored), then by id, descending.</summary>
    private static void AssertNewestFirst(List<JsonNode> items)
    {
        var keys = items.Select(i => (Ms: i["created_at"]!.GetValue<DateTimeOffset>().ToUnixTimeMilliseconds(), Id: i["id"]!.GetValue<string>())).ToList();
        for (var i = 1; i < keys.Count; i++)
        {
            Assert.True(keys[i - 1].Ms > keys[i].Ms || (keys[i - 1].Ms == keys[i].Ms && string.CompareOrdinal(keys[i - 1].Id, keys[i].Id) > 0),
                $"item {i} ({keys[i]}) does not come after item {i - 1} ({keys[i - 1]})");
        }
    }
}
