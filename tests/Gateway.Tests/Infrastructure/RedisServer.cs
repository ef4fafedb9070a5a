using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;

[assembly: AssemblyFixture(typeof(Gateway.Tests.Infrastructure.RedisServer))]

namespace Gateway.Tests.Infrastructure;

/// <summary>
/// A real redis-server for the whole test run, on a free loopback port (or the one REDIS_URL names).
/// A machine without it fails the tests with a message saying how to get it; nothing is skipped.
/// A test that kills Redis starts one of its own with <see cref="StartDurableAsync"/>.
/// </summary>
public sealed class RedisServer : IAsyncLifetime
{
    private System.Diagnostics.Process? _process;
    private string[] _arguments = [];

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

        await StartAsync(FreePort(), ["--save", "", "--appendonly", "no"]);
    }

    /// <summary>
    /// A redis-server of the caller's own that keeps every write in an append-only file under
    /// <paramref name="directory"/>, fsynced before it answers, so it can be killed and restarted
    /// (<see cref="Kill"/>, <see cref="RestartAsync"/>) on the same port with nothing lost.
    /// </summary>
    public static async Task<RedisServer> StartDurableAsync(string directory)
    {
        var server = new RedisServer();
        await server.StartAsync(FreePort(), ["--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", directory]);
        return server;
    }

    /// <summary>SIGKILL, as a crash or an OOM kill would: no shutdown, every client connection drops at once.</summary>
    public void Kill()
    {
        if (_process is not { HasExited: false } process)
        {
            throw new InvalidOperationException("This redis-server is not running.");
        }

        process.Kill();
        process.WaitForExit(5000);
        process.Dispose();
        _process = null;
    }

    /// <summary>SIGSTOP: the server keeps its sockets open but answers nothing, as a hung or partitioned Redis.</summary>
    public void Freeze() => Signal("STOP");

    /// <summary>SIGCONT: the frozen server answers again, everything queued meanwhile included.</summary>
    public void Thaw() => Signal("CONT");

    /// <summary>Starts redis-server again on the same port with the same settings (and data directory); returns once it answers PING.</summary>
    public Task RestartAsync() =>
        _process is null ? StartAsync(Port, _arguments) : throw new InvalidOperationException("This redis-server is still running.");

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

    private void Signal(string signal)
    {
        if (_process is not { HasExited: false } process)
        {
            throw new InvalidOperationException("This redis-server is not running.");
        }

        using var kill = System.Diagnostics.Process.Start("kill", ["-" + signal, process.Id.ToString(CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill -{signal} {process.Id} failed with {kill.ExitCode}.");
        }
    }

    private async Task StartAsync(int port, string[] arguments)
    {
        Port = port;
        _arguments = arguments;
        var start = new ProcessStartInfo("redis-server",
            ["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--databases", "10000", .. arguments])
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
        ConnectionString = $"127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}";
        for (var attempt = 0; attempt < 100; attempt++)
        {
            try
            {
                await using var redis = await ConnectionMultiplexer.ConnectAsync(ConnectionString + ",connectTimeout=500");
                await redis.GetDatabase().PingAsync();
                return;
            }
            catch (RedisException)
            {
                // not listening yet, or still loading its append-only file
                await Task.Delay(100);
            }
        }

        throw new InvalidOperationException($"redis-server did not start on port {port}.");
    }
}
