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
public sealed class WebhookBodyMemoryTests(RedisServer redis, PublishedGateway published)
{
    private const long HundredMegabytes = 100L * 1024 * 1024;
    private const long AllowedGrowthKiB = 64 * 1024; // loose: ~50 MB, and room for the GC's own swings

    [Fact]
    public async Task FourConcurrentUnsigned100MbPosts_Are401Quickly_AndResidentMemoryStaysFlat()
    {
        await using var world = await ProcessHarness.StartAsync(redis, published.Executable);
        using var client = WebhookBodyLimitTests.ExpectContinueClient(world.Gateway.BaseAddress);
        using var memory = await WarmUpAndWatchAsync(world, client);

        // As curl sends large bodies (Expect: 100-continue): the answer comes before any of the body is sent.
        var polite = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ =>
            PostAsync(client, headers: null, new ZeroContent(HundredMegabytes, chunked: false), expectContinue: true)));
        // As an attacker would: all 100 MB pushed at once. The gateway answers 401 without reading it and then
        // discards it or closes the connection; .NET's client, which sends first, may see only the close.
        var pushy = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ =>
            PostAsync(client, headers: null, new ZeroContent(HundredMegabytes, chunked: false), expectContinue: false)));

        var growth = memory.Stop();
        Report(world, [.. polite, .. pushy], growth, memory);
        foreach (var answer in polite)
        {
            Assert.True(answer.Status == HttpStatusCode.Unauthorized, $"expected 401, got {answer}{world.Describe()}");
            Assert.True(answer.Elapsed < TimeSpan.FromSeconds(2), $"a 401 took {answer.Elapsed.TotalMilliseconds:F0} ms{world.Describe()}");
        }

        Assert.All(pushy, a => Assert.True(a.Status is HttpStatusCode.Unauthorized || a.Error is not null, $"expected 401 or a closed connection, got {a}{world.Describe()}"));
        Assert.True(growth <= AllowedGrowthKiB, $"resident memory grew by {growth / 1024} MB under unsigned 100 MB webhooks{world.Describe()}");
    }

    [Fact]
    public async Task FourConcurrentForged100MbPosts_AreRefused_AndResidentMemoryStaysBounded()
    {
        await using var world = await ProcessHarness.StartAsync(redis, published.Executable);
        using var client = WebhookBodyLimitTests.ExpectContinueClient(world.Gateway.BaseAddress);
        using var memory = await WarmUpAndWatchAsync(world, client);

        // Fresh timestamps and well-formed signatures pass the header check, so these bodies are read. Chunked,
        // so no Content-Length gives the size away: the gateway reads (and hashes) up to its cap, then 413.
        var oversize = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => PostAsync(client,
            WebhookBodyLimitTests.ForgedHeaders(Guid.NewGuid().ToString(), DateTimeOffset.UtcNow), new ZeroContent(HundredMegabytes, chunked: true), expectContinue: true)));
        // Under the cap: read whole, hashed, and only then found forged.
        var undersize = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => PostAsync(client,
            WebhookBodyLimitTests.ForgedHeaders(Guid.NewGuid().ToString(), DateTimeOffset.UtcNow), new ZeroContent(40L * 1024 * 1024, chunked: true), expectContinue: true)));

        var growth = memory.Stop();
        Report(world, [.. oversize, .. undersize], growth, memory);
        // .NET's client goes on sending after an early answer, so it may see only the close that follows the 413;
        // the gateway's own log says what it answered.
        Assert.All(oversize, a => Assert.True(a.Status == HttpStatusCode.RequestEntityTooLarge || a.Error is not null, $"expected 413 or a closed connection, got {a}{world.Describe()}"));
        Assert.True(CountInOutput(world, "fal webhook refused: BodyTooLarge") == 4, $"the gateway did not refuse all four oversize bodies as too large{world.Describe()}");
        Assert.All(undersize, a => Assert.True(a.Status == HttpStatusCode.Unauthorized, $"expected 401, got {a}{world.Describe()}"));
        Assert.True(growth <= AllowedGrowthKiB, $"resident memory grew by {growth / 1024} MB under forged 100 MB and 40 MB webhooks{world.Describe()}");
    }

    /// <summary>Runs each webhook path once (JIT, pools, the JWKS fetch), then samples VmRSS until stopped.</summary>
    private static async Task<MemoryWatch> WarmUpAndWatchAsync(ProcessHarness world, HttpClient client)
    {
        await PostAsync(client, headers: null, new ZeroContent(1024, chunked: false), expectContinue: false);
        await PostAsync(client, WebhookBodyLimitTests.ForgedHeaders(Guid.NewGuid().ToString(), DateTimeOffset.UtcNow), new ZeroContent(2 * 1024 * 1024, chunked: true), expectContinue: true);
        await Task.Delay(500, TestContext.Current.CancellationToken);
        return new MemoryWatch(world.Gateway);
    }

    private static async Task<Answer> PostAsync(HttpClient client, IDictionary<string, string>? headers, HttpContent content, bool expectContinue)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/webhooks/fal") { Content = content };
        content.Headers.ContentType = new("application/json");
        request.Headers.ExpectContinue = expectContinue;
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        var clock = Stopwatch.StartNew();
        try
        {
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
            return new(response.StatusCode, clock.Elapsed, null);
        }
        catch (HttpRequestException e)
        {
            return new(null, clock.Elapsed, e.InnerException?.Message ?? e.Message);
        }
    }

    private static int CountInOutput(ProcessHarness world, string text) =>
        world.Gateway.Output.Split('\n').Count(line => line.Contains(text, StringComparison.Ordinal));

    private sealed record Answer(HttpStatusCode? Status, TimeSpan Elapsed, string? Error)
    {
        public override string ToString() => $"{(Status is { } s ? ((int)s).ToString(System.Globalization.CultureInfo.InvariantCulture) : Error)} in {Elapsed.TotalMilliseconds:F0} ms";
    }

    private static void Report(ProcessHarness world, Answer[] answers, long growthKiB, MemoryWatch memory) =>
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"gateway {world.Gateway.ProcessId}: RSS before {memory.BeforeKiB / 1024} MB, peak sampled {memory.MaxSampledKiB / 1024} MB, " +
            $"VmHWM {memory.PeakBeforeKiB / 1024} → {memory.PeakAfterKiB / 1024} MB, growth {growthKiB / 1024} MB; answers: " +
            string.Join(", ", answers.Select(a => a.ToString())));

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
