using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Gateway.Tests.Process;

namespace Gateway.Benchmarks;

/// <summary>A throwaway redis-server on a free loopback port, no persistence (as the tests' RedisServer).</summary>
internal sealed class LocalRedis : IDisposable
{
    private readonly Process _process;
    private int _disposed;

    private LocalRedis(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public string ConnectionString => $"127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}";

    public static async Task<LocalRedis> StartAsync(CancellationToken cancellationToken)
    {
        var port = ProcessGateway.FreePort();
        var start = new ProcessStartInfo("redis-server",
            ["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("redis-server is not installed: run 'apt-get install -y redis-server'.", e);
        }

        process.OutputDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        var redis = new LocalRedis(process, port);
        for (var attempt = 0; attempt < 100; attempt++)
        {
            if (await redis.PingAsync(cancellationToken))
            {
                return redis;
            }

            await Task.Delay(100, cancellationToken);
        }

        redis.Dispose();
        throw new InvalidOperationException($"redis-server did not answer PING on port {port}.");
    }

    private async Task<bool> PingAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", Port, cancellationToken);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), cancellationToken);
            var buffer = new byte[16];
            var read = await stream.ReadAsync(buffer, cancellationToken);
            return Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return; // on failure both the run and the process-exit hook get here
        }

        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }

        _process.Dispose();
    }
}
