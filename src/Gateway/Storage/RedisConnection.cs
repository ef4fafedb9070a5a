using System.Collections.Concurrent;
using StackExchange.Redis;

namespace Gateway.Storage;

/// <summary>
/// The replica's one Redis connection, set up to fail fast. While Redis is unreachable a command fails at
/// once (the caller answers 503 + Retry-After) instead of waiting in the client's backlog for a command
/// timeout, readiness reads the connection's own state, and reconnect attempts come at least once a second,
/// so service resumes about a second after Redis does. Settings given in ConnectionStrings__Redis win.
/// </summary>
internal static partial class RedisConnection
{
    /// <summary>What the connection string did not set. A command on a healthy Redis takes milliseconds.</summary>
    internal const int ConnectTimeoutMilliseconds = 1000;
    internal const int CommandTimeoutMilliseconds = 1000;
    internal const int KeepAliveSeconds = 5;

    /// <summary>The heartbeat drives reconnect attempts and timeout checks (the client's default is 1 s).</summary>
    internal static readonly TimeSpan HeartbeatInterval = TimeSpan.FromMilliseconds(500);

    /// <summary>The first attempt after a quarter of a second, then attempts never more than a second apart.</summary>
    internal static IReconnectRetryPolicy ReconnectPolicy => new ExponentialRetry(250, 1000);

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

        // None of these has a connection-string key. FailFast: no queueing while disconnected.
        options.BacklogPolicy = BacklogPolicy.FailFast;
        options.ReconnectRetryPolicy = ReconnectPolicy;
        options.HeartbeatInterval = HeartbeatInterval;
        options.ClientName ??= "mai-image-gateway";
        return options;
    }

    /// <summary>Connects (returning even while Redis is down, unless abortConnect=true) and logs each loss and return of an endpoint once.</summary>
    public static IConnectionMultiplexer Connect(ConfigurationOptions options, ILogger logger)
    {
        var connection = ConnectionMultiplexer.Connect(options);
        var down = new ConcurrentDictionary<string, byte>(StringComparer.Ordinal);
        connection.ConnectionFailed += (_, e) =>
        {
            // Fired again for every failed reconnect attempt: only the first failure of an endpoint is news.
            if (e.ConnectionType == ConnectionType.Interactive && down.TryAdd(Describe(e.EndPoint), 0))
            {
                LogLost(logger, Describe(e.EndPoint), e.FailureType, e.Exception);
            }
        };
        connection.ConnectionRestored += (_, e) =>
        {
            if (e.ConnectionType == ConnectionType.Interactive && down.TryRemove(Describe(e.EndPoint), out byte _))
            {
                LogRestored(logger, Describe(e.EndPoint));
            }
        };
        if (!connection.IsConnected)
        {
            foreach (var endpoint in options.EndPoints)
            {
                down.TryAdd(Describe(endpoint), 0);
            }

            LogNotConnectedAtStart(logger, string.Join(", ", down.Keys));
        }

        return connection;
    }

    /// <summary>The setting names in a connection string (endpoints and command renames carry no '=' or start with '$').</summary>
    private static HashSet<string> GivenSettings(string connectionString) =>
        connectionString.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Where(part => part.Contains('=', StringComparison.Ordinal) && !part.StartsWith('$'))
            .Select(part => part[..part.IndexOf('=', StringComparison.Ordinal)].Trim())
            .ToHashSet(StringComparer.OrdinalIgnoreCase);

    private static string Describe(System.Net.EndPoint? endpoint) => endpoint?.ToString() ?? "(unknown)";

    [LoggerMessage(Level = LogLevel.Error, Message = "Lost the Redis connection to {EndPoint} ({FailureType}): requests that need Redis answer 503 until it is back")]
    private static partial void LogLost(ILogger logger, string endPoint, ConnectionFailureType failureType, Exception? exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "The Redis connection to {EndPoint} is back")]
    private static partial void LogRestored(ILogger logger, string endPoint);

    [LoggerMessage(Level = LogLevel.Error, Message = "Redis ({EndPoints}) is not reachable at start: readiness is 503 until it is; the connection keeps retrying")]
    private static partial void LogNotConnectedAtStart(ILogger logger, string endPoints);
}
