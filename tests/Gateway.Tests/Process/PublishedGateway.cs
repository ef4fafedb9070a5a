using System.Diagnostics;
using System.Text;

namespace Gateway.Tests.Process;

/// <summary>
/// <c>dotnet publish src/Gateway -c Release -a {arch}</c> into a temporary directory, once per run of the process
/// tests (a fixture of their collection): what the Dockerfile ships (self-contained and trimmed), not what the test
/// build left in bin/.
/// </summary>
public sealed class PublishedGateway : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "gateway-publish-" + Guid.NewGuid().ToString("N"));

    /// <summary>The gateway's own executable, as the image's entry point runs it.</summary>
    public string Executable => ProcessGateway.PublishedExecutable(_directory);

    /// <summary>The publish output, as the image's /app holds it.</summary>
    public string OutputDirectory => _directory;

    public async ValueTask InitializeAsync()
    {
        var start = new ProcessStartInfo("dotnet", [.. ProcessGateway.PublishArguments(_directory), "-v", "minimal"])
        {
            WorkingDirectory = ProcessGateway.RepoRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };

        // The test runner's MSBuild settings belong to its own build, not to this one.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(name);
        }

        var output = new StringBuilder();
        using var process = new System.Diagnostics.Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet publish did not finish in 10 minutes:\n{output}");
        }

        if (process.ExitCode != 0 || !File.Exists(Executable))
        {
            throw new InvalidOperationException($"dotnet publish failed ({process.ExitCode}):\n{output}");
        }
    }

    public ValueTask DisposeAsync()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // a temp directory left behind is harmless
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>The process tests run one at a time: each starts a gateway process; the image's build is published once for them.</summary>
[CollectionDefinition(nameof(GatewayProcesses))]
public sealed class GatewayProcesses : ICollectionFixture<PublishedGateway>;
