using System.Diagnostics;
using System.Net;
using Gateway.Tests.Infrastructure;
using Gateway.Tests.Process;

namespace Gateway.Tests.Faults;

/// <summary>
/// Issue 9, point 3, measured on the gateway as its own process (Production, Redis): four concurrent
/// 100 MB webhook POSTs, unsigned or with forged signature headers, must not raise its resident memory
/// by more than a few tens of MB (before the fix, unsigned ones raised it by 600+ MB).
/// </summary>
[Collection(nameof(GatewayProcesses))]
public sealed class WebhookBodyMemoryTests(RedisServer redis)
{
    private const long HundredMegabytes = 100L * 1024 * 1024;
    private const long AllowedGrowthKiB = 64 * 1024; // loose: ~50 MB, and room for the GC's own swings

    [Fact]
    public async Task FourConcurrentUnsigned100MbPosts_Are401Quickly_AndResidentMemoryStaysFlat()
    {
        await using var world = await ProcessHarness.StartAsync(redis, ProcessHarness.BuiltDll);
        using var client = world.Client(key: null);
        using var memory = await WarmUpAndWatchAsync(world, client);

        var answers = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ =>
            PostAsync(client, headers: null, new ZeroContent(HundredMegabytes, chunked: false))));

        var growth = memory.Stop();
        Report(world, answers, growth, memory);
        foreach (var (status, elapsed) in answers)
        {
            Assert.True(status == HttpStatusCode.Unauthorized, $"expected 401, got {(int)status}{world.Describe()}");
            Assert.True(elapsed < TimeSpan.FromSeconds(10), $"a 401 took {elapsed.TotalMilliseconds:F0} ms{world.Describe()}");
        }

        Assert.True(growth <= AllowedGrowthKiB, $"resident memory grew by {growth / 1024} MB under four unsigned 100 MB webhooks{world.Describe()}");
    }

    [Fact]
    public async Task FourConcurrentForged100MbPosts_AreRefused_AndResidentMemoryStaysBounded()
    {
        await using var world = await ProcessHarness.StartAsync(redis, ProcessHarness.BuiltDll);
        using var client = world.Client(key: null);
        using var memory = await WarmUpAndWatchAsync(world, client);

        // Chunked, so no Content-Length gives the size away: the gateway must read (and hash) up to its cap.
        var oversize = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ =>
            PostAsync(client, WebhookBodyLimitTests.ForgedHeaders(Guid.NewGuid().ToString(), DateTimeOffset.UtcNow), new ZeroContent(HundredMegabytes, chunked: true))));
        // Under the cap: read whole, hashed, and only then found forged.
        var undersize = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ =>
            PostAsync(client, WebhookBodyLimitTests.ForgedHeaders(Guid.NewGuid().ToString(), DateTimeOffset.UtcNow), new ZeroContent(40L * 1024 * 1024, chunked: true))));

        var growth = memory.Stop();
        Report(world, [.. oversize, .. undersize], growth, memory);
        Assert.All(oversize, a => Assert.True(a.Status == HttpStatusCode.RequestEntityTooLarge, $"expected 413, got {(int)a.Status}{world.Describe()}"));
        Assert.All(undersize, a => Assert.True(a.Status == HttpStatusCode.Unauthorized, $"expected 401, got {(int)a.Status}{world.Describe()}"));
        Assert.True(growth <= AllowedGrowthKiB, $"resident memory grew by {growth / 1024} MB under forged 100 MB and 40 MB webhooks{world.Describe()}");
    }

    /// <summary>Runs each webhook path once (JIT, pools, the JWKS fetch), then samples VmRSS until stopped.</summary>
    private static async Task<MemoryWatch> WarmUpAndWatchAsync(ProcessHarness world, HttpClient client)
    {
        await PostAsync(client, headers: null, new ZeroContent(1024, chunked: false));
        await PostAsync(client, WebhookBodyLimitTests.ForgedHeaders(Guid.NewGuid().ToString(), DateTimeOffset.UtcNow), new ZeroContent(2 * 1024 * 1024, chunked: true));
        await Task.Delay(500, TestContext.Current.CancellationToken);
        return new MemoryWatch(world.Gateway);
    }

    private static async Task<(HttpStatusCode Status, TimeSpan Elapsed)> PostAsync(HttpClient client, IDictionary<string, string>? headers, HttpContent content)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/webhooks/fal") { Content = content };
        content.Headers.ContentType = new("application/json");
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        var clock = Stopwatch.StartNew();
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        return (response.StatusCode, clock.Elapsed);
    }

    private static void Report(ProcessHarness world, (HttpStatusCode Status, TimeSpan Elapsed)[] answers, long growthKiB, MemoryWatch memory) =>
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"gateway {world.Gateway.ProcessId}: RSS before {memory.BeforeKiB / 1024} MB, peak sampled {memory.MaxSampledKiB / 1024} MB, " +
            $"VmHWM {memory.PeakBeforeKiB / 1024} → {memory.PeakAfterKiB / 1024} MB, growth {growthKiB / 1024} MB; answers: " +
            string.Join(", ", answers.Select(a => $"{(int)a.Status} in {a.Elapsed.TotalMilliseconds:F0} ms")));

    /// <summary>VmRSS sampled every 20 ms, and VmHWM before and after: how far the load pushed the process.</summary>
    private sealed class MemoryWatch : IDisposable
    {
        private readonly ProcessGateway _gateway;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _sampling;
        private long _maxSampled;

        public MemoryWatch(ProcessGateway gateway)
        {
            _gateway = gateway;
            (BeforeKiB, PeakBeforeKiB) = gateway.Memory();
            _maxSampled = BeforeKiB;
            _sampling = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    _maxSampled = Math.Max(_maxSampled, _gateway.Memory().RssKiB);
                    await Task.Delay(20).ConfigureAwait(false);
                }
            });
        }

        public long BeforeKiB { get; }

        public long PeakBeforeKiB { get; }

        public long PeakAfterKiB { get; private set; }

        public long MaxSampledKiB => _maxSampled;

        /// <summary>Stops sampling; the most the resident set rose above its figure before the load.</summary>
        public long Stop()
        {
            _stop.Cancel();
            _sampling.GetAwaiter().GetResult();
            PeakAfterKiB = _gateway.Memory().PeakRssKiB;
            var peak = Math.Max(_maxSampled, PeakAfterKiB > PeakBeforeKiB ? PeakAfterKiB : 0);
            return Math.Max(0, peak - BeforeKiB);
        }

        public void Dispose()
        {
            _stop.Cancel();
            _stop.Dispose();
        }
    }
}
