using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gateway.Tests.Infrastructure;
using StackExchange.Redis;

namespace Gateway.Tests.Process;

[Collection(nameof(GatewayProcesses))]
public sealed class GracefulShutdownTests(RedisServer redis, PublishedGateway published)
{
    private const int Loops = 4;
    private static readonly TimeSpan LoadBeforeSignal = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan ExitWithin = TimeSpan.FromSeconds(45); // the host's 30 s shutdown timeout, and room

    [Fact]
    public async Task Sigterm_UnderLoad_LosesNoAcceptedRequest()
    {
        await using var world = await ProcessHarness.StartAsync(redis, published.Executable);
        var gateway = world.Gateway;
        var log = new Outcomes();
        var clock = Stopwatch.StartNew();

        var loads = Enumerable.Range(0, Loops).Select(n => Task.Run(() => SubmitAndPollAsync(world, n, log, clock), TestContext.Current.CancellationToken)).ToList();
        var held = Task.Run(() => HoldPreferWaitAsync(world, log, clock), TestContext.Current.CancellationToken);

        // An event stream open across the signal, on a generation that outlives the drain.
        using var streams = world.Client();
        using var open = await OpenWatchedStreamAsync(streams, world);
        var (watched, reader) = (open.Id, open.Reader);

        await Task.Delay(LoadBeforeSignal, TestContext.Current.CancellationToken);
        Assert.False(gateway.HasExited, $"the gateway died under load before the signal{world.Describe()}");
        var probes = new ConcurrentQueue<(TimeSpan At, string Answer)>();
        log.Signalled(clock.Elapsed);
        gateway.Terminate();
        var probing = Task.Run(() => ProbeReadinessAsync(world, probes, clock), TestContext.Current.CancellationToken);

        // The open stream ends without a terminal event, telling the client to come back soon (to another replica)…
        var rest = await reader.ReadAllAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        Assert.DoesNotContain(rest, e => e.Event is "completed" or "failed");
        Assert.True(reader.RetryHints.Contains("500"), $"the open stream ended without a retry hint (hints: {string.Join(",", reader.RetryHints)}){world.Describe()}");

        // …and a new stream while draining is refused with Retry-After (a request racing the signal may still be served).
        var refused = await RefusedStreamAsync(streams, watched);
        Assert.True(refused is { StatusCode: HttpStatusCode.ServiceUnavailable, Headers.RetryAfter: not null },
            $"a new event stream while draining answered {(refused is null ? "nothing" : (int)refused.StatusCode)}{world.Describe()}");
        refused!.Dispose();

        var exited = await gateway.WaitForExitAsync(ExitWithin);
        await Task.WhenAll([.. loads, held, probing]);
        Assert.True(exited, $"the gateway did not exit within {ExitWithin} of SIGTERM{world.Describe()}");
        Assert.True(gateway.ExitCode == 0, $"the gateway exited with {gateway.ExitCode}{world.Describe()}");

        var accepted = log.Accepted.ToList();
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"{accepted.Count} accepted; {log.Draining} answered 503; probes after SIGTERM: {string.Join(",", probes.Select(p => p.Answer))}; exited {gateway.ExitCode}");
        Assert.True(accepted.Count >= Loops, $"only {accepted.Count} submits were accepted before SIGTERM: no load to speak of{world.Describe()}");
        Assert.True(log.Invalid.IsEmpty, $"responses that were not complete and valid:\n{string.Join('\n', log.Invalid)}{world.Describe()}");
        Assert.True(log.InFlightLost.IsEmpty,
            $"requests in flight at SIGTERM got no answer:\n{string.Join('\n', log.InFlightLost)}{world.Describe()}");

        await using var store = await ConnectionMultiplexer.ConnectAsync(world.RedisConnectionString);
        var missing = new List<string>();
        foreach (var id in accepted)
        {
            if (!await store.GetDatabase().KeyExistsAsync($"gw:gen:{{{id}}}"))
            {
                missing.Add(id);
            }
        }

        Assert.True(missing.Count == 0, $"{missing.Count} of {accepted.Count} accepted generations are not in Redis: {string.Join(", ", missing)}{world.Describe()}");

        // Readiness after the signal: 503 for the drain delay (a probe racing the signal itself may still see
        // 200), never 200 again once it said 503, and nothing else; after the drain, no answer at all.
        var answers = probes.Select(p => p.Answer).Where(a => a != "no answer").ToList();
        var seen = string.Join(",", probes.Select(p => $"{p.At.TotalMilliseconds:F0}ms:{p.Answer}"));
        Assert.All(answers, a => Assert.True(a is "200" or "503", $"/health/ready answered {a} while draining: {seen}"));
        var firstDraining = answers.IndexOf("503");
        Assert.True(firstDraining >= 0, $"/health/ready never answered 503 between SIGTERM and exit: {seen}{world.Describe()}");
        Assert.True(!answers.Skip(firstDraining).Contains("200"), $"/health/ready said 200 after 503 while draining: {seen}");
    }

    /// <summary>
    /// Before the signal every request must be answered; if one is not, say what the process was doing (an
    /// unanswered request here once failed this test with nothing to say why).
    /// </summary>
    private static async Task<WatchedStream> OpenWatchedStreamAsync(HttpClient client, ProcessHarness world)
    {
        try
        {
            var watched = await client.SubmitAsync(new { prompt = "watched [[run:20000]]" });
            var open = await client.GetAsync($"/v1/generations/{watched}/events", HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
            var reader = new ServerSentEventReader(await open.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken));
            Assert.Equal("status", (await reader.NextAsync(TestContext.Current.CancellationToken))?.Event);
            return new WatchedStream(watched, open, reader);
        }
        catch (HttpRequestException e)
        {
            Assert.Fail($"before SIGTERM, a request to the gateway got no answer: {e.Message}{world.Describe()}");
            throw;
        }
    }

    /// <summary>The first answer to a new event stream that is not a stream (the replica is draining), or null.</summary>
    private static async Task<HttpResponseMessage?> RefusedStreamAsync(HttpClient client, string id)
    {
        for (var attempt = 0; attempt < 40; attempt++)
        {
            try
            {
                var response = await client.GetAsync($"/v1/generations/{id}/events", HttpCompletionOption.ResponseHeadersRead);
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    return response;
                }

                response.Dispose();
            }
            catch (HttpRequestException)
            {
                return null;
            }

            await Task.Delay(50);
        }

        return null;
    }

    /// <summary>Submit, then read the accepted generation's status, until the process is gone.</summary>
    private static async Task SubmitAndPollAsync(ProcessHarness world, int loop, Outcomes log, Stopwatch clock)
    {
        using var client = world.Client();
        for (var i = 0; !world.Gateway.HasExited; i++)
        {
            var body = new StringContent($$"""{"prompt":"load {{loop}}-{{i}}"}""", Encoding.UTF8, "application/json");
            var answer = await log.SendAsync(client, HttpMethod.Post, "/v1/generations", body, clock);
            if (answer is not { Status: HttpStatusCode.Accepted } accepted)
            {
                await Task.Delay(20);
                continue;
            }

            var json = Parse(accepted.Body);
            var id = json?["id"]?.GetValue<string>();
            if (id is null || json!["status"] is null || accepted.Location != $"/v1/generations/{id}")
            {
                log.Invalid.Enqueue($"202 without a valid Generation: {accepted.Body}");
                continue;
            }

            log.Accepted.Enqueue(id);
            var status = await log.SendAsync(client, HttpMethod.Get, $"/v1/generations/{id}/status", null, clock);
            if (status is { Status: HttpStatusCode.OK } && Parse(status.Body)?["status"] is null)
            {
                log.Invalid.Enqueue($"status 200 without a status: {status.Body}");
            }
        }
    }

    /// <summary>Keeps a <c>Prefer: wait</c> read open across the signal: an in-flight request that must still be answered.</summary>
    private static async Task HoldPreferWaitAsync(ProcessHarness world, Outcomes log, Stopwatch clock)
    {
        using var client = world.Client();
        while (!world.Gateway.HasExited && log.SignalledAt is null)
        {
            var submit = await log.SendAsync(client, HttpMethod.Post, "/v1/generations",
                new StringContent("""{"prompt":"held [[run:2500]]"}""", Encoding.UTF8, "application/json"), clock);
            if (submit is not { Status: HttpStatusCode.Accepted } || Parse(submit.Body)?["id"]?.GetValue<string>() is not { } id)
            {
                continue;
            }

            log.Accepted.Enqueue(id);
            await log.SendAsync(client, HttpMethod.Get, $"/v1/generations/{id}", null, clock, prefer: "wait=5");
        }
    }

    private static async Task ProbeReadinessAsync(ProcessHarness world, ConcurrentQueue<(TimeSpan, string)> probes, Stopwatch clock)
    {
        using var client = world.Client(key: null);
        client.Timeout = TimeSpan.FromSeconds(5);
        while (!world.Gateway.HasExited)
        {
            string answer;
            try
            {
                using var response = await client.GetAsync("/health/ready");
                answer = ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (HttpRequestException)
            {
                answer = "no answer";
            }
            catch (TaskCanceledException)
            {
                answer = "no answer";
            }

            probes.Enqueue((clock.Elapsed, answer));
            await Task.Delay(25);
        }
    }

    private static JsonNode? Parse(string body)
    {
        try
        {
            return JsonNode.Parse(body);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private sealed record Answer(HttpStatusCode Status, string Body, string? Location);

    private sealed record WatchedStream(string Id, HttpResponseMessage Response, ServerSentEventReader Reader) : IDisposable
    {
        public void Dispose() => Response.Dispose();
    }

    /// <summary>
    /// What the load saw. A request with no answer (refused, reset) is not a failure unless it was sent
    /// well before the signal: the server had it in hand, so draining must answer it.
    /// </summary>
    private sealed class Outcomes
    {
        private static readonly TimeSpan InHand = TimeSpan.FromMilliseconds(500);
        private long _signalledAtTicks = -1;

        public ConcurrentQueue<string> Accepted { get; } = new();

        public ConcurrentQueue<string> Invalid { get; } = new();

        public ConcurrentQueue<string> InFlightLost { get; } = new();

        private int _draining;

        public int Draining => Volatile.Read(ref _draining);

        public TimeSpan? SignalledAt => Volatile.Read(ref _signalledAtTicks) is >= 0 and var ticks ? TimeSpan.FromTicks(ticks) : null;

        public void Signalled(TimeSpan at) => Volatile.Write(ref _signalledAtTicks, at.Ticks);

        public async Task<Answer?> SendAsync(HttpClient client, HttpMethod method, string path, HttpContent? content, Stopwatch clock, string? prefer = null)
        {
            using var request = new HttpRequestMessage(method, path) { Content = content };
            if (prefer is not null)
            {
                request.Headers.Add("Prefer", prefer);
            }

            var started = clock.Elapsed;
            try
            {
                using var response = await client.SendAsync(request);
                var body = await response.Content.ReadAsStringAsync();
                var status = (int)response.StatusCode;
                if (status == 503)
                {
                    Interlocked.Increment(ref _draining);
                }

                if (status >= 500 && status != 503)
                {
                    Invalid.Enqueue($"{method} {path} answered {status}: {body}");
                }
                else if (response.Content.Headers.ContentType?.MediaType is { } type && type.Contains("json", StringComparison.Ordinal) && Parse(body) is null)
                {
                    Invalid.Enqueue($"{method} {path} answered {status} with a truncated or invalid body: {body}");
                }

                return new Answer(response.StatusCode, body, response.Headers.Location?.OriginalString);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
            {
                if (SignalledAt is not { } signalled || started < signalled - InHand)
                {
                    InFlightLost.Enqueue($"{method} {path} sent at {started.TotalMilliseconds:F0} ms (SIGTERM at {SignalledAt?.TotalMilliseconds:F0} ms): {e.GetType().Name}: {e.Message}");
                }

                return null;
            }
        }
    }
}
