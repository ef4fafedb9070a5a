using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;

[assembly: AssemblyFixture(typeof(Gateway.Tests.Infrastructure.RedisServer))]

namespace Gateway.Tests.Infrastructure;

/// <summary>
/// A real redis-server for the whole test run, on a free loopback port (or the one REDIS_URL names).
/// A machine without it fails the tests with a message saying how to get it; nothing is skipped.
/// </summary>
public sealed class RedisServer : IAsyncLifetime
{
    private System.Diagnostics.Process? _process;

    public string ConnectionString { get; private set; } = "";

    public int Port { get; private set; }

    private int _nextDatabase;

    /// <summary>
    /// A connection string to a database no other test deployment uses: each test's gateways are one
    /// deployment, and must not see another's pending generations (as two real deployments would not).
    /// </summary>
    public string IsolatedConnectionString() =>
        $"{ConnectionString},defaultDatabase={Interlocked.Increment(ref _nextDatabase) % 10000}";

    public async ValueTask InitializeAsync()
    {
        if (Environment.GetEnvironmentVariable("REDIS_URL") is { Length: > 0 } url)
        {
            ConnectionString = url;
            return;
        }

        Port = FreePort();
        var start = new ProcessStartInfo("redis-server",
            ["--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--databases", "10000"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        try
        {
            _process = System.Diagnostics.Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException(
                "redis-server is not installed: run 'apt-get install -y redis-server' (or set REDIS_URL to a Redis to use).", e);
        }

        _process.OutputDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        ConnectionString = $"127.0.0.1:{Port}";
        for (var attempt = 0; attempt < 100; attempt++)
        {
            try
            {
                await using var redis = await ConnectionMultiplexer.ConnectAsync(ConnectionString + ",connectTimeout=500");
                await redis.GetDatabase().PingAsync();
                return;
            }
            catch (RedisConnectionException)
            {
                await Task.Delay(100);
            }
        }

        throw new InvalidOperationException($"redis-server did not start on port {Port}.");
    }

    public ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }

        _process?.Dispose();
        return ValueTask.CompletedTask;
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
