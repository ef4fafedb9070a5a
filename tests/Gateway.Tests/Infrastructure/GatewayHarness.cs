using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using FalEmulator;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Tests.Infrastructure;

/// <summary>
/// One test's world: a fal stand-in, one or more gateway replicas sharing the test run's real Redis,
/// and HTTP clients for two internal clients. Every response and log line is kept, and on dispose
/// the harness fails the test if any of them shows the FAL key or a client key.
/// </summary>
public sealed class GatewayHarness : IAsyncDisposable
{
    public const string AlphaKey = "alpha-client-key-7f3a9c2e-secret";
    public const string BetaKey = "beta-client-key-51d0b8aa-secret";

    private readonly List<GatewayApplication> _gateways = [];
    private readonly ConcurrentQueue<string> _seen = new();
    private readonly CapturingSink _logs = new();
    private readonly ConcurrentBag<string> _moreSecrets = [];
    private int _webhookPort;
    private string? _publicBaseUrl;

    private GatewayHarness(FalEmulatorHost emulator, string falKey, ContractViolations contract)
    {
        Emulator = emulator;
        FalKey = falKey;
        Contract = contract;
    }

    /// <summary>What the replicas answered that docs/openapi.json does not describe; any fails the test on dispose.</summary>
    public ContractViolations Contract { get; }

    public FalEmulatorHost Emulator { get; }

    public FalEmulatorState Fal => Emulator.State;

    public string FalKey { get; }

    public IReadOnlyList<Uri> GatewayUrls => _gateways.Select(g => g.ClientOptions.BaseAddress).ToList();

    public Uri GatewayUrl { get; private set; } = null!;

    /// <summary>This test's own Redis database (null: the in-memory store).</summary>
    public string? RedisConnectionString { get; private init; }

    public IServiceProvider Services => _gateways[0].Services;

    /// <summary>The gateways' environment: Testing unless a test needs Development's own rules.</summary>
    public string Environment { get; private init; } = "Testing";
    /// <summary>Every replica's services, in the order they were added.</summary>
    public IReadOnlyList<IServiceProvider> ReplicaServices => [.. _gateways.Select(g => g.Services)];

    public static string Sha256(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    public static async Task<GatewayHarness> StartAsync(
        RedisServer? redis,
        Action<FalEmulatorOptions>? emulator = null,
        IReadOnlyDictionary<string, string?>? settings = null,
        int replicas = 1,
        bool webhooks = false,
        Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? services = null,
        string environment = "Testing",
        OpenApiContract? contract = null)
    {
        var falKey = "fal-key-" + Guid.NewGuid().ToString("N") + ":SECRETPART";
        var emulatorOptions = new FalEmulatorOptions
        {
            Key = falKey,
            QueueTime = TimeSpan.FromMilliseconds(50),
            RunTime = TimeSpan.FromMilliseconds(150),
            ImageLongSide = 64,
            SlowDelay = TimeSpan.FromSeconds(10),
        };
        emulator?.Invoke(emulatorOptions);
        var harness = new GatewayHarness(await FalEmulatorHost.StartAsync(emulatorOptions), falKey, new ContractViolations(contract))
        {
            RedisConnectionString = redis?.IsolatedConnectionString(),
            Environment = environment,
        };
        if (webhooks)
        {
            // fal (the stand-in) delivers webhooks to replica 0, as a load balancer would pick one replica.
            harness._webhookPort = RedisServer.FreePort();
            harness._publicBaseUrl = $"http://127.0.0.1:{harness._webhookPort}";
        }

        for (var i = 0; i < replicas; i++)
        {
            harness.AddReplica(redis, settings, services);
        }

        return harness;
    }

    public Uri AddReplica(
        RedisServer? redis,
        IReadOnlyDictionary<string, string?>? settings = null,
        Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? services = null)
    {
        var all = new Dictionary<string, string?>
        {
            ["ConnectionStrings:Redis"] = redis is null ? "" : RedisConnectionString,
            ["Fal:Key"] = FalKey,
            ["Fal:QueueBaseUrl"] = Emulator.QueueBaseUrl,
            ["Fal:RestBaseUrl"] = Emulator.RestBaseUrl,
            ["Fal:RunBaseUrl"] = Emulator.RunBaseUrl,
            ["Fal:JwksUrl"] = Emulator.JwksUrl,
            ["Fal:AttemptTimeout"] = "00:00:03",
            ["Fal:TotalTimeout"] = "00:00:08",
            ["Clients:alpha:KeySha256"] = Sha256(AlphaKey),
            ["Clients:beta:KeySha256"] = Sha256(BetaKey),
            ["Gateway:PublicBaseUrl"] = _publicBaseUrl ?? "",
            ["Gateway:ShutdownDrainDelay"] = "00:00:00", // the draining test sets its own
            ["Fal:UseEmulator"] = "false", // the harness's own stand-in, also in Development
            ["Serilog:MinimumLevel:Default"] = "Debug",
            ["Serilog:ConsoleMinimumLevel"] = "Fatal",
            // Tests share one Redis and run in parallel: limits stay out of the way unless a test sets them.
            ["Limits:RequestsPerMinute"] = "100000",
            ["Limits:ImagesPerDay"] = "100000000",
            ["Limits:MaxConcurrent"] = "100000",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }

        var gateway = new GatewayApplication(all, _logs, Environment, services, contract: Contract);
        _gateways.Add(gateway);
        var url = gateway.Start(_gateways.Count == 1 ? _webhookPort : 0);
        gateway.ClientOptions.BaseAddress = url;
        GatewayUrl = _gateways[0].ClientOptions.BaseAddress;
        return url;
    }

    /// <summary>A client of the gateway as <paramref name="key"/> (null: no credentials), on replica <paramref name="replica"/>.</summary>
    public HttpClient Client(string? key = AlphaKey, int replica = 0, bool bearer = true)
    {
        var client = new HttpClient(new RecordingHandler(_seen)) { BaseAddress = _gateways[replica].ClientOptions.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        if (key is not null)
        {
            if (bearer)
            {
                client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            }
            else
            {
                client.DefaultRequestHeaders.Add("X-Api-Key", key);
            }
        }

        return client;
    }

    public string Logs() => _logs.Text;

    /// <summary>The one submit fal received: where it went and its JSON body as the stand-in recorded it.</summary>
    public (string PathAndQuery, JsonObject Body) ForwardedSubmit()
    {
        var submit = Assert.Single(Fal.Requests, r => r.Method == "POST");
        Assert.True(submit.Body is not null, $"the stand-in kept no body for the submit ({submit.BodyLength} bytes)");
        return (submit.PathAndQuery, JsonNode.Parse(submit.Body)!.AsObject());
    }

    /// <summary>Exactly these fields and values (order aside): nothing added, nothing null, nothing renamed.</summary>
    public static void AssertSameJson(string expected, JsonNode actual) =>
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), actual), $"fal received {actual.ToJsonString()}\nexpected      {expected}");

    /// <summary>Every log event the replicas wrote so far.</summary>
    public IReadOnlyCollection<Serilog.Events.LogEvent> LogEvents => _logs.Events;

    /// <summary>Where <paramref name="secret"/> shows in the logs (message, any property at any depth, exception).</summary>
    public IEnumerable<string> LogOccurrences(string secret) => _logs.Occurrences(secret);

    /// <summary>Secrets that must appear in no response and no log line.</summary>
    public IEnumerable<string> Secrets => [FalKey, FalKey.Split(':')[0], "SECRETPART", AlphaKey, BetaKey, .. _moreSecrets];

    /// <summary>
    /// One more value the dispose check looks for in every log line and response (an access token: its signature,
    /// which nothing but the token itself contains). Returns <paramref name="secret"/>.
    /// </summary>
    public string Secret(string secret)
    {
        _moreSecrets.Add(secret.Count(c => c == '.') == 2 && !secret.EndsWith('.') ? secret[(secret.LastIndexOf('.') + 1)..] : secret);
        return secret;
    }

    public async ValueTask DisposeAsync()
    {
        // A request's log line is written after its response has gone out: give a test's last request time to log.
        for (var i = 0; i < 40 && string.IsNullOrEmpty(Logs()); i++)
        {
            await Task.Delay(50);
        }

        foreach (var gateway in _gateways)
        {
            await DisposeWithTheClockRunningAsync(gateway);
        }

        await Emulator.DisposeAsync();
        var logs = Logs();
        var responses = string.Join("\n", _seen);
        Assert.False(string.IsNullOrEmpty(logs), "The gateway wrote no log lines: the secret check would prove nothing.");
        foreach (var secret in Secrets)
        {
            Assert.False(logs.Contains(secret, StringComparison.Ordinal),
                $"A secret appeared in the gateway's logs: {secret[..6]}…, e.g. in {_logs.Occurrences(secret).FirstOrDefault() ?? "the text"}");
            Assert.False(responses.Contains(secret, StringComparison.Ordinal), $"A secret appeared in a response: {secret[..6]}…");
        }

        Contract.ThrowIfAny();
    }

    /// <summary>
    /// Disposing a gateway disposes its fal client's resilience pipelines, and Polly (which takes the TimeProvider
    /// from DI) waits for a call still in flight by sleeping on that clock: on a test's fake clock, which nobody
    /// moves any more, it would sleep for ever (seen: a whole run hung in IdempotencyTests). So the fake clock
    /// keeps moving until the gateway is gone.
    /// </summary>
    private static async Task DisposeWithTheClockRunningAsync(GatewayApplication gateway)
    {
        if (gateway.Services.GetService(typeof(TimeProvider)) is not FakeTimeProvider fake)
        {
            await gateway.DisposeAsync();
            return;
        }

        using var disposed = new CancellationTokenSource();
        var ticking = Task.Run(async () =>
        {
            while (!disposed.IsCancellationRequested)
            {
                fake.Advance(TimeSpan.FromMilliseconds(100));
                await Task.Delay(10, CancellationToken.None);
            }
        }, CancellationToken.None);
        try
        {
            await gateway.DisposeAsync();
        }
        finally
        {
            await disposed.CancelAsync();
            await ticking;
        }
    }

    /// <summary>Keeps every response's headers and (text) body for the secret check.</summary>
    private sealed class RecordingHandler(ConcurrentQueue<string> seen) : DelegatingHandler(new SocketsHttpHandler())
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            seen.Enqueue(response.Headers.ToString() + response.Content.Headers);
            if (response.Content.Headers.ContentType?.MediaType is { } type && type != "text/event-stream"
                && (type.Contains("json", StringComparison.Ordinal) || type.StartsWith("text/", StringComparison.Ordinal))
                && response.Content.Headers.ContentLength is null or < 1_000_000)
            {
                await response.Content.LoadIntoBufferAsync(cancellationToken);
                var body = await response.Content.ReadAsStringAsync(cancellationToken);
                seen.Enqueue(body.Length > 1_000_000 ? body[..1_000_000] : body);
            }

            return response;
        }
    }
}
