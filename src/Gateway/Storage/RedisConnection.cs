using Gateway.Hosting;
using StackExchange.Redis;

namespace Gateway.Storage;

/// <summary>
/// The replica's Redis connection and whether it can be used right now. The stores take their database
/// from <see cref="Database"/>, which refuses at once (a <see cref="RedisConnectionException"/>, answered
/// as 503 + Retry-After) while Redis is known to be unusable, rather than letting each request find out by
/// waiting for a command timeout. "Known" is the connection's own state (a killed Redis drops it at once)
/// and a PING every <see cref="ProbeInterval"/> that must answer within <see cref="PingTimeout"/> (a hung
/// or partitioned Redis keeps its sockets open and answers nothing). Readiness reads the same state.
/// The probe runs on the wall clock, not the application's <see cref="TimeProvider"/>: whether Redis
/// answered within 500 ms is a fact about the network, and a clock moved by hand (as tests move it) must
/// not make a healthy Redis look unavailable.
/// </summary>
internal sealed partial class RedisConnection : BackgroundService
{
    private readonly IConnectionMultiplexer _multiplexer;
    private readonly ILogger<RedisConnection> _logger;

    public RedisConnection(IConnectionMultiplexer multiplexer, GatewayMetrics metrics, ILogger<RedisConnection> logger)
    {
        _multiplexer = multiplexer;
        _logger = logger;
        // What readiness says, for the alert that pages when Redis is gone (readiness alone only drains the pods).
        metrics.Meter.CreateObservableGauge("gateway.redis.available", () => IsAvailable ? 1 : 0,
            description: "1 while Redis is connected and answers PING in time, else 0 (requests that need it answer 503)");
    }

    /// <summary>What the connection string did not set. A command on a healthy Redis takes milliseconds.</summary>
    internal const int ConnectTimeoutMilliseconds = 1000;
    internal const int CommandTimeoutMilliseconds = 1000;
    internal const int KeepAliveSeconds = 5;

    internal static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(250);
    internal static readonly TimeSpan PingTimeout = TimeSpan.FromMilliseconds(500);

    /// <summary>The heartbeat drives reconnect attempts and timeout checks (the client's default is 1 s).</summary>
    internal static readonly TimeSpan HeartbeatInterval = TimeSpan.FromMilliseconds(500);

    private volatile bool _answering = true;

    /// <summary>Connected, and the last PING was answered in time.</summary>
    public bool IsAvailable => _answering && _multiplexer.IsConnected;

    /// <summary>The database to run commands on; throws at once while Redis is not available.</summary>
    public IDatabase Database => IsAvailable
        ? _multiplexer.GetDatabase()
        : throw new RedisConnectionException(ConnectionFailureType.UnableToResolvePhysicalConnection,
            "Redis is not available (not connected, or not answering PING); the command was not sent.");

    /// <summary>
    /// The client settings behind the outage behaviour, each applied only where ConnectionStrings__Redis
    /// does not set it: no queueing while disconnected (a command with no connection fails at once),
    /// reconnect attempts at most a second apart, 1 s connect and command timeouts, a keep-alive PING every 5 s.
    /// </summary>
    public static ConfigurationOptions Options(string connectionString)
    {
        ConfigurationOptions options;
        try
        {
            options = ConfigurationOptions.Parse(connectionString);
        }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException($"ConnectionStrings__Redis is not a valid StackExchange.Redis connection string: {e.Message}", e);
        }

        var given = GivenSettings(connectionString);
        if (!given.Contains("abortConnect"))
        {
            // Start even while Redis is down: readiness says so, and the client reconnects by itself.
            options.AbortOnConnectFail = false;
        }

        if (!given.Contains("connectTimeout"))
        {
            options.ConnectTimeout = ConnectTimeoutMilliseconds;
        }

        if (!given.Contains("syncTimeout"))
        {
            options.SyncTimeout = CommandTimeoutMilliseconds;
            if (!given.Contains("asyncTimeout"))
            {
                options.AsyncTimeout = CommandTimeoutMilliseconds;
            }
        }

        if (!given.Contains("keepAlive"))
        {
            options.KeepAlive = KeepAliveSeconds;
        }

        // These have no connection-string keys.
        options.BacklogPolicy = BacklogPolicy.FailFast;
        options.ReconnectRetryPolicy = new ExponentialRetry(250, 1000);
        options.HeartbeatInterval = HeartbeatInterval;
        options.ClientName ??= "mai-image-gateway";
        return options;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(ProbeInterval);
        do
        {
            await ProbeAsync(stoppingToken);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private async Task ProbeAsync(CancellationToken stoppingToken)
    {
        string? problem = null;
        if (!_multiplexer.IsConnected)
        {
            problem = "not connected";
        }
        else
        {
            try
            {
                await _multiplexer.GetDatabase().PingAsync().WaitAsync(PingTimeout, stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // Never let the probe end: a BackgroundService that throws stops the host. (The client also
                // cancels a pending PING when it drops a connection that stopped answering.)
                problem = e switch
                {
                    TimeoutException => $"no answer to PING within {PingTimeout.TotalMilliseconds:F0} ms",
                    RedisConnectionException connection => connection.FailureType.ToString(),
                    _ => e.GetType().Name,
                };
            }
        }

        var answering = problem is null;
        if (answering != _answering)
        {
            _answering = answering;
            if (answering)
            {
                LogAvailable(_logger);
            }
            else
            {
                LogUnavailable(_logger, problem!);
            }
        }
    }

    /// <summary>The setting names in a connection string (endpoints carry no '=', command renames start with '$').</summary>
    private static HashSet<string> GivenSettings(string connectionString) =>
        connectionString.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Where(part => part.Contains('=', StringComparison.Ordinal) && !part.StartsWith('$'))
            .Select(part => part[..part.IndexOf('=', StringComparison.Ordinal)].Trim())
            .ToHashSet(StringComparer.OrdinalIgnoreCase);

    [LoggerMessage(Level = LogLevel.Error, Message = "Redis is not available ({Problem}): requests that need it answer 503 until it is back")]
    private static partial void LogUnavailable(ILogger logger, string problem);

    [LoggerMessage(Level = LogLevel.Information, Message = "Redis is available again")]
    private static partial void LogAvailable(ILogger logger);
}
