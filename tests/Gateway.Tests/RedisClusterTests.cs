using System.Net;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests;

/// <summary>
/// The gateway on a real three-master Redis Cluster (redis-server --cluster-enabled, made a cluster by
/// redis-cli --cluster create), plain, with a password and with an ACL user: a generation end to end (submit,
/// completion by fal's webhook, status, result, history, usage, a limit refusal, an idempotent replay), and one
/// while hash slots move between the masters. Each test starts and stops its own cluster.
/// </summary>
public sealed class RedisClusterTests(RedisServer redis)
{
    private const string TightKey = "cluster-tight-key-31d0";

    [Fact]
    public async Task Cluster_GenerationEndToEnd_Works()
    {
        await using var cluster = await RedisCluster.StartAsync();
        await RunGenerationAsync(cluster.Endpoints);
    }

    [Fact]
    public async Task ClusterWithPassword_GenerationEndToEnd_Works()
    {
        await using var cluster = await RedisCluster.StartAsync(password: "cluster-pass-7f3e");
        await RunGenerationAsync($"{cluster.Endpoints},password=cluster-pass-7f3e");
    }

    /// <summary>An ACL user of its own (on every node: ACLs are per node), not the default user, whose password differs.</summary>
    [Fact]
    public async Task ClusterWithAclUser_GenerationEndToEnd_Works()
    {
        await using var cluster = await RedisCluster.StartAsync(password: "default-pass-0c9a");
        foreach (var port in cluster.Ports)
        {
            Assert.Contains("OK", await cluster.CliAsync(port, "ACL", "SETUSER", "gw", "on", ">gw-pass-51b2", "~*", "&*", "+@all"), StringComparison.Ordinal);
        }

        await RunGenerationAsync($"{cluster.Endpoints},user=gw,password=gw-pass-51b2");
    }

    /// <summary>The connection string's user is what the gateway uses: a wrong password for it stops readiness, not the cluster's default.</summary>
    [Fact]
    public async Task ClusterWithAclUser_WrongPassword_IsNotReady()
    {
        await using var cluster = await RedisCluster.StartAsync(password: "default-pass-0c9a");
        foreach (var port in cluster.Ports)
        {
            await cluster.CliAsync(port, "ACL", "SETUSER", "gw", "on", ">gw-pass-51b2", "~*", "&*", "+@all");
        }

        await using var harness = await GatewayHarness.StartAsync(redis, settings: new Dictionary<string, string?>
        {
            ["ConnectionStrings:Redis"] = $"{cluster.Endpoints},user=gw,password=default-pass-0c9a,connectTimeout=1000",
        });
        using var ready = await harness.Client(key: null).GetAsync("/health/ready", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
    }

    /// <summary>
    /// Generations submitted before, during and after a reshard (a third of the slots, keys and all, moved from one
    /// master to another with redis-cli --cluster reshard) all complete, and every result and status is readable after.
    /// </summary>
    [Fact]
    public async Task Cluster_WhileSlotsMove_EveryGenerationCompletes()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var cluster = await RedisCluster.StartAsync();
        await using var harness = await GatewayHarness.StartAsync(redis, emulator: fal => fal.RunTime = TimeSpan.FromMilliseconds(800), webhooks: true,
            settings: new Dictionary<string, string?> { ["ConnectionStrings:Redis"] = cluster.Endpoints });
        var client = harness.Client();

        var ids = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            ids.Add(await client.SubmitAsync(new { prompt = $"before the reshard {i}" }));
        }

        // All of the first master's slots: every key it holds moves (redis-cli prints a dot per key batch migrated).
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var reshard = cluster.ReshardAsync(5461);
        var during = new List<string>();
        while (!reshard.IsCompleted)
        {
            during.Add(await client.SubmitAsync(new { prompt = $"during the reshard {during.Count}" }));
            await Task.Delay(250, ct);
        }

        var output = await reshard;
        var moved = System.Text.RegularExpressions.Regex.Count(output, @"Moving slot \d+ from \S+ to \S+: \.");
        Assert.True(moved > 0 && during.Count > 0, $"{moved} slots moved with keys, {during.Count} submits during the reshard ({clock.Elapsed}):\n{output[..Math.Min(output.Length, 2000)]}");
        ids.AddRange(during);
        for (var i = 0; i < 5; i++)
        {
            ids.Add(await client.SubmitAsync(new { prompt = $"after the reshard {i}" }));
        }

        foreach (var id in ids)
        {
            var done = await client.WaitUntilDoneAsync(id, TimeSpan.FromSeconds(30));
            Assert.True(done["status"]!.GetValue<string>() == "COMPLETED", $"{id}: {done}");
            using var result = await client.GetAsync($"/v1/generations/{id}/result", ct);
            Assert.Equal(HttpStatusCode.OK, result.StatusCode);
        }

        var listed = new HashSet<string>();
        string? cursor = null;
        do
        {
            using var history = await client.GetAsync("/v1/generations?limit=100" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor)), ct);
            var page = await history.JsonAsync();
            listed.UnionWith(page["items"]!.AsArray().Select(i => i!["id"]!.GetValue<string>()));
            cursor = page["next_cursor"]?.GetValue<string>();
        }
        while (cursor is not null);

        Assert.Superset(ids.ToHashSet(), listed);
        Assert.DoesNotContain("CROSSSLOT", harness.Logs(), StringComparison.Ordinal);
    }

    private async Task RunGenerationAsync(string connectionString)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var harness = await GatewayHarness.StartAsync(redis, webhooks: true, settings: new Dictionary<string, string?>
        {
            ["ConnectionStrings:Redis"] = connectionString,
            ["Clients:tight:KeySha256"] = GatewayHarness.Sha256(TightKey),
            ["Clients:tight:ImagesPerDay"] = "2",
        });
        var client = harness.Client();
        using (var ready = await harness.Client(key: null).GetAsync("/health/ready", ct))
        {
            Assert.True(ready.StatusCode == HttpStatusCode.OK, $"not ready on the cluster: {await ready.Content.ReadAsStringAsync(ct)}\n{harness.Logs()}");
        }

        // Submit; fal (the stand-in) completes it by webhook; status, result, the generation and history follow.
        var id = await client.SubmitAsync(new { prompt = "a lighthouse on a cluster", num_images = 2 });
        var done = await client.WaitUntilDoneAsync(id, TimeSpan.FromSeconds(30));
        Assert.True(done["status"]!.GetValue<string>() == "COMPLETED", done.ToJsonString());
        // The status poll may see COMPLETED at fal a moment before fal's webhook is out; the webhook must then be taken.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (harness.Fal.WebhooksSent == 0 && clock.Elapsed < TimeSpan.FromSeconds(15))
        {
            await Task.Delay(50, ct);
        }

        Assert.True(harness.Fal.WebhooksSent > 0, "fal sent no webhook");
        using (var status = await client.GetAsync($"/v1/generations/{id}/status", ct))
        {
            Assert.Equal(HttpStatusCode.OK, status.StatusCode);
            Assert.Equal("COMPLETED", (await status.JsonAsync())["status"]!.GetValue<string>());
        }

        using (var result = await client.GetAsync($"/v1/generations/{id}/result", ct))
        {
            Assert.Equal(HttpStatusCode.OK, result.StatusCode);
            Assert.Equal(2, (await result.JsonAsync())["images"]!.AsArray().Count);
        }

        using (var history = await client.GetAsync("/v1/generations", ct))
        {
            Assert.Contains(id, (await history.JsonAsync())["items"]!.AsArray().Select(i => i!["id"]!.GetValue<string>()));
        }

        using (var usage = await client.GetAsync("/v1/usage", ct))
        {
            var body = await usage.JsonAsync();
            Assert.Equal(HttpStatusCode.OK, usage.StatusCode);
            Assert.Equal(2, body["images"]!.GetValue<long>());
            Assert.Equal(1, body["submits"]!.GetValue<long>());
        }

        // An idempotent replay answers the first generation again.
        var first = await SubmitWithKeyAsync(client, "cluster-idem-1");
        var replay = await SubmitWithKeyAsync(client, "cluster-idem-1");
        Assert.Equal(first, replay);

        // A client's daily image limit (its counters share one slot) refuses past it.
        using var tight = harness.Client(TightKey);
        await tight.SubmitAsync(new { prompt = "within", num_images = 2 });
        using var refused = await tight.PostJsonAsync("/v1/generations", new { prompt = "past the limit" });
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.DoesNotContain("CROSSSLOT", harness.Logs(), StringComparison.Ordinal);
        Assert.DoesNotContain("fal webhook refused", harness.Logs(), StringComparison.Ordinal);
    }

    private static async Task<string> SubmitWithKeyAsync(HttpClient client, string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/generations")
        {
            Content = new StringContent("""{"prompt":"once only"}""", System.Text.Encoding.UTF8, "application/json"),
            Headers = { { "Idempotency-Key", $"\"{key}\"" } },
        };
        using var response = await client.SendAsync(request, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return (await response.JsonAsync())["id"]!.GetValue<string>();
    }
}
