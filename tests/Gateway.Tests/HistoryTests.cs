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
