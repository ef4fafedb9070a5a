using System.Net.Http.Headers;
using FalEmulator;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests.Process;

/// <summary>
/// One process test's world: the fal stand-in in this process, the gateway as its own OS process in
/// Production against the run's real Redis (a database of its own), and one configured client key.
/// </summary>
public sealed class ProcessHarness : IAsyncDisposable
{
    public const string ClientKey = "process-client-key-3c9e1f7a-secret";

    private ProcessHarness(FalEmulatorHost fal, ProcessGateway gateway, string falKey, string redis)
    {
        Fal = fal;
        Gateway = gateway;
        FalKey = falKey;
        RedisConnectionString = redis;
    }

    public FalEmulatorHost Fal { get; }

    public ProcessGateway Gateway { get; }

    public string FalKey { get; }

    /// <summary>The isolated Redis database this gateway uses.</summary>
    public string RedisConnectionString { get; }

    public static async Task<ProcessHarness> StartAsync(
        RedisServer redis,
        string dll,
        Action<FalEmulatorOptions>? emulator = null,
        IReadOnlyDictionary<string, string>? settings = null,
        bool webhooks = false,
        int keptLines = ProcessGateway.KeptLines)
    {
        var falKey = "fal-key-" + Guid.NewGuid().ToString("N") + ":SECRETPART";
        var options = new FalEmulatorOptions
        {
            Key = falKey,
            QueueTime = TimeSpan.FromMilliseconds(50),
            RunTime = TimeSpan.FromMilliseconds(200),
            MaxConcurrent = 50,
            ImageLongSide = 64,
        };
        emulator?.Invoke(options);
        var fal = await FalEmulatorHost.StartAsync(options, cancellationToken: TestContext.Current.CancellationToken);
        var connection = redis.IsolatedConnectionString();
        for (var attempt = 1; ; attempt++)
        {
            var port = ProcessGateway.FreePort();
            var environment = new Dictionary<string, string>
            {
                ["ConnectionStrings__Redis"] = connection,
                ["Fal__Key"] = falKey,
                ["Fal__QueueBaseUrl"] = fal.QueueBaseUrl,
                ["Fal__RestBaseUrl"] = fal.RestBaseUrl,
                ["Fal__RunBaseUrl"] = fal.RunBaseUrl,
                ["Fal__JwksUrl"] = fal.JwksUrl,
                ["Gateway__PublicBaseUrl"] = webhooks ? $"http://127.0.0.1:{port}" : "",
                ["Clients__process__KeySha256"] = GatewayHarness.Sha256(ClientKey),
                // These tests load one client far past the default limits; the limits have tests of their own.
                ["Clients__process__RequestsPerMinute"] = "1000000",
                ["Clients__process__ImagesPerDay"] = "10000000",
                ["Clients__process__MaxConcurrent"] = "100000",
                ["Serilog__MinimumLevel__Default"] = "Information",
            };
            foreach (var (name, value) in settings ?? new Dictionary<string, string>())
            {
                environment[name] = value;
            }

            ProcessGateway? gateway = null;
            try
            {
                gateway = ProcessGateway.Start(dll, environment, port, keptLines);
                await gateway.WaitUntilReadyAsync(TimeSpan.FromSeconds(90), TestContext.Current.CancellationToken);
                return new ProcessHarness(fal, gateway, falKey, connection);
            }
            catch (Exception) when (attempt < 3 && gateway?.LostItsPort() == true)
            {
                // Another socket bound the port between FreePort and this process: try another one.
                gateway.Dispose();
            }
            catch
            {
                gateway?.Dispose();
                await fal.DisposeAsync();
                throw;
            }
        }
    }

    /// <summary>What the gateway answered this harness's clients that docs/openapi.json does not describe; any fails the test on dispose.</summary>
    public ContractViolations Contract { get; } = new();

    /// <summary>
    /// A client with its own connection pool; <paramref name="key"/> null sends no credentials. Its answers are checked
    /// against the contract. <paramref name="traced"/> false: its handler makes no activity, so no tracing in this test
    /// process (the in-process gateways' HttpClient instrumentation) writes a <c>traceparent</c> over a request's own.
    /// </summary>
    public HttpClient Client(string? key = ClientKey, bool traced = true)
    {
        var handler = new SocketsHttpHandler { MaxConnectionsPerServer = 64 };
        if (!traced)
        {
            handler.ActivityHeadersPropagator = null;
        }

        var client = new HttpClient(new ContractCheckingHandler(Contract, handler))
        {
            BaseAddress = Gateway.BaseAddress,
            Timeout = TimeSpan.FromSeconds(30),
        };
        if (key is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return client;
    }

    /// <summary>For assertion messages: how the process ended (if it did) and what it wrote last.</summary>
    public string Describe() =>
        $"\n--- gateway process {Gateway.ProcessId} ({(Gateway.HasExited ? $"exited {Gateway.ExitCode}" : "running")}), last output:\n{Gateway.Output}";

    public async ValueTask DisposeAsync()
    {
        Gateway.Dispose();
        await Fal.DisposeAsync();
        Contract.ThrowIfAny();
    }
}
