using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Gateway.Tests.Infrastructure;

/// <summary>
/// Azurite's Blob service (Microsoft's Azure Storage emulator, tests/Azurite, pinned by its package-lock.json) on a free
/// loopback port, keeping everything in memory; started for a test class and stopped after it.
/// </summary>
public sealed class AzuriteServer : IAsyncLifetime
{
    /// <summary>Azurite's well-known development account (public, documented by Microsoft; not a secret).</summary>
    public const string AccountName = "devstoreaccount1";

    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private readonly StringBuilder _output = new();
    private System.Diagnostics.Process? _process;
    private Task? _pumps;
    private string? _location;

    public int Port { get; private set; }

    public string BlobEndpoint => $"http://127.0.0.1:{Port}/{AccountName}";

    public string ConnectionString => $"DefaultEndpointsProtocol=http;AccountName={AccountName};AccountKey={AccountKey};BlobEndpoint={BlobEndpoint};";

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public async ValueTask InitializeAsync()
    {
        var folder = await NodeTools.InstalledFolderAsync("Azurite", Path.Combine("azurite", "package.json"));
        Port = RedisServer.FreePort();
        _location = Directory.CreateTempSubdirectory("azurite-").FullName; // its working directory: data stays in memory, anything else it writes goes here
        _process = NodeTools.Start("node",
            [Path.Combine(folder, "node_modules", "azurite", "dist", "src", "blob", "main.js"),
             "--blobHost", "127.0.0.1", "--blobPort", Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
             "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry", "--loose", "--silent"],
            _location);
        _pumps = NodeTools.Pump(_process, _output);

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            if (_process.HasExited)
            {
                Assert.Fail($"Azurite exited ({_process.ExitCode}) before it listened:\n{Output}");
            }

            try
            {
                using var socket = new TcpClient();
                await socket.ConnectAsync("127.0.0.1", Port, TestContext.Current.CancellationToken);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, TestContext.Current.CancellationToken);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { } process)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            await process.WaitForExitAsync(CancellationToken.None);
            await (_pumps ?? Task.CompletedTask);
            process.Dispose();
        }

        if (_location is not null)
        {
            Directory.Delete(_location, recursive: true);
        }
    }
}
