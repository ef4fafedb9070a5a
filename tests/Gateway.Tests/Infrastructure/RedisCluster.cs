using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Gateway.Tests.Infrastructure;

/// <summary>
/// A real Redis Cluster of three masters (no replicas) on free loopback ports, each redis-server with its own
/// directory for nodes.conf, made a cluster by <c>redis-cli --cluster create</c>, as an operator would. Optionally
/// with a password (<c>requirepass</c>, and <c>masterauth</c> for the cluster bus) and an ACL user. Disposing stops
/// the servers and deletes the directories.
/// </summary>
public sealed class RedisCluster : IAsyncDisposable
{
    private readonly List<System.Diagnostics.Process> _servers = [];
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "gateway-redis-cluster-" + Guid.NewGuid().ToString("N"));
    private readonly string? _password;

    private RedisCluster(string? password) => _password = password;

    public IReadOnlyList<int> Ports { get; private set; } = [];

    /// <summary>Every node, as StackExchange.Redis takes them (it discovers the slots from any one of them).</summary>
    public string Endpoints => string.Join(",", Ports.Select(p => $"127.0.0.1:{p.ToString(CultureInfo.InvariantCulture)}"));

    public static async Task<RedisCluster> StartAsync(string? password = null, int masters = 3)
    {
        var cluster = new RedisCluster(password);
        try
        {
            await cluster.StartServersAsync(masters);
            await cluster.CreateAsync();
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary><c>redis-cli</c> against one node (the password, if any, given as <c>-a</c>); fails the test on a non-zero exit.</summary>
    public Task<string> CliAsync(int port, params string[] arguments) =>
        RunAsync("redis-cli", ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), .. PasswordArguments(), .. arguments]);

    /// <summary>Moves <paramref name="slots"/> hash slots, keys and all, from the first node to the second, as an operator's reshard.</summary>
    public async Task<string> ReshardAsync(int slots)
    {
        var from = await NodeIdAsync(Ports[0]);
        var to = await NodeIdAsync(Ports[1]);
        return await RunAsync("redis-cli",
        [
            "--cluster", "reshard", $"127.0.0.1:{Ports[0]}", .. PasswordArguments(), "--cluster-from", from, "--cluster-to", to,
            "--cluster-slots", slots.ToString(CultureInfo.InvariantCulture), "--cluster-yes",
        ]);
    }

    public async Task<string> NodeIdAsync(int port) => (await CliAsync(port, "CLUSTER", "MYID")).Trim();

    public async ValueTask DisposeAsync()
    {
        foreach (var server in _servers)
        {
            try
            {
                if (!server.HasExited)
                {
                    server.Kill();
                    await server.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(5)).Token);
                }
            }
            catch (Exception e) when (e is InvalidOperationException or OperationCanceledException)
            {
                // already gone
            }

            server.Dispose();
        }

        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // a temp directory left behind is harmless
        }
    }

    private string[] PasswordArguments() => _password is null ? [] : ["-a", _password, "--no-auth-warning"];

    private async Task StartServersAsync(int masters)
    {
        var ports = new List<int>();
        for (var i = 0; i < masters; i++)
        {
            // A free port can be taken by another test's process before redis-server binds it; the server then exits at
            // once. Try other ports rather than wait for a PING that cannot come.
            for (var attempt = 1; ; attempt++)
            {
                var port = RedisServer.FreePort();
                var server = StartServer(port);
                _servers.Add(server);
                await WaitUntilAsync(async () => server.HasExited || (await TryCliAsync(port, "PING")).Contains("PONG", StringComparison.Ordinal),
                    $"redis-server on {port} did not answer PING");
                if (!server.HasExited)
                {
                    ports.Add(port);
                    break;
                }

                if (attempt == 3)
                {
                    throw new InvalidOperationException($"redis-server exited ({server.ExitCode}) on three free ports in a row; the last was {port}.");
                }
            }
        }

        Ports = ports;
    }

    private System.Diagnostics.Process StartServer(int port)
    {
        var directory = Path.Combine(_directory, port.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(directory);
        var start = new ProcessStartInfo("redis-server",
        [
            "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", directory,
            // The bus port is a free port of its own: the default (port + 10000) may be anyone's.
            "--cluster-enabled", "yes", "--cluster-port", RedisServer.FreePort().ToString(CultureInfo.InvariantCulture),
            "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
            "--save", "", "--appendonly", "no",
            .. (_password is null ? Array.Empty<string>() : ["--requirepass", _password, "--masterauth", _password]),
        ])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var server = System.Diagnostics.Process.Start(start)
            ?? throw new InvalidOperationException("redis-server is not installed: run 'apt-get install -y redis-server'.");
        server.OutputDataReceived += (_, _) => { };
        server.ErrorDataReceived += (_, _) => { };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        return server;
    }

    private async Task CreateAsync()
    {
        await RunAsync("redis-cli",
            ["--cluster", "create", .. Ports.Select(p => $"127.0.0.1:{p}"), "--cluster-replicas", "0", "--cluster-yes", .. PasswordArguments()]);
        foreach (var port in Ports)
        {
            await WaitUntilAsync(async () => (await TryCliAsync(port, "CLUSTER", "INFO")).Contains("cluster_state:ok", StringComparison.Ordinal),
                $"node {port} did not reach cluster_state:ok");
        }
    }

    private async Task<string> TryCliAsync(int port, params string[] arguments)
    {
        try
        {
            return await CliAsync(port, arguments);
        }
        catch (InvalidOperationException e)
        {
            return e.Message;
        }
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> done, string failure)
    {
        var clock = Stopwatch.StartNew();
        while (!await done())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(20))
            {
                throw new TimeoutException(failure);
            }

            await Task.Delay(100);
        }
    }

    private static async Task<string> RunAsync(string file, string[] arguments)
    {
        var start = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', arguments)} did not finish in 30 s");
        }

        var output = new StringBuilder().Append(await stdout).Append(await stderr).ToString();
        return process.ExitCode == 0
            ? output
            : throw new InvalidOperationException($"{file} {string.Join(' ', arguments.Select((a, i) => i > 0 && arguments[i - 1] == "-a" ? "***" : a))} exited {process.ExitCode}: {output}");
    }
}
