using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests;

/// <summary>
/// Runs tests/FalClient (the official <c>@fal-ai/client</c>, pinned, under <c>node --test</c>) against a gateway and
/// the fal stand-in on loopback, so the README's single <c>dotnet test</c> proves the proxy with fal's own client.
/// </summary>
public sealed class FalClientTests(RedisServer redis)
{
    private static readonly TimeSpan NpmTimeout = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan NodeTimeout = TimeSpan.FromMinutes(4);

    [Fact]
    public async Task OfficialFalClient_ThroughTheGatewayProxy_PassesTheNodeSuite()
    {
        var folder = Path.Combine(RepoRoot(), "tests", "FalClient");
        await RequireToolAsync("node");
        if (!File.Exists(Path.Combine(folder, "node_modules", "@fal-ai", "client", "package.json")))
        {
            await RequireToolAsync("npm");
            var (npmExit, npmOutput) = await RunAsync("npm", ["ci", "--no-audit", "--no-fund"], folder, new Dictionary<string, string?>(), NpmTimeout);
            Assert.True(npmExit == 0, $"npm ci in {folder} failed ({npmExit}); the npm registry must be reachable:\n{npmOutput}");
        }

        await using var harness = await GatewayHarness.StartAsync(redis, e =>
        {
            e.QueueTime = TimeSpan.FromMilliseconds(50);
            e.RunTime = TimeSpan.FromMilliseconds(300);
        });
        var environment = new Dictionary<string, string?>
        {
            ["FAL_PROXY_URL"] = new Uri(harness.GatewayUrl, "/api/fal/proxy").ToString(),
            ["CLIENT_KEY"] = GatewayHarness.AlphaKey,
            ["OTHER_CLIENT_KEY"] = GatewayHarness.BetaKey,
            // The client would send these as Authorization: Key …; a frontend never has them.
            ["FAL_KEY"] = null,
            ["FAL_KEY_ID"] = null,
            ["FAL_KEY_SECRET"] = null,
            ["NODE_OPTIONS"] = null,
        };

        var (exit, output) = await RunAsync("node", ["--test", "--test-reporter=spec"], folder, environment, NodeTimeout);

        Assert.True(exit == 0, $"node --test in tests/FalClient failed ({exit}):\n{output}");
        Assert.True(harness.Fal.AcceptedSubmitCount > 0, output);
    }

    private static async Task RequireToolAsync(string tool)
    {
        try
        {
            var (exit, _) = await RunAsync(tool, ["--version"], Directory.GetCurrentDirectory(), new Dictionary<string, string?>(), TimeSpan.FromSeconds(30));
            Assert.True(exit == 0, $"'{tool} --version' failed; install Node.js and npm: apt-get install -y nodejs npm");
        }
        catch (Win32Exception)
        {
            Assert.Fail($"{tool} is not installed, and the @fal-ai/client tests need it: apt-get install -y nodejs npm");
        }
    }

    private static async Task<(int Exit, string Output)> RunAsync(
        string file, string[] arguments, string directory, Dictionary<string, string?> environment, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment)
        {
            if (value is null)
            {
                start.Environment.Remove(name);
            }
            else
            {
                start.Environment[name] = value;
            }
        }

        using var process = System.Diagnostics.Process.Start(start)!;
        var output = new StringBuilder();
        var stdout = PumpAsync(process.StandardOutput, output);
        var stderr = PumpAsync(process.StandardError, output);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            await Task.WhenAll(stdout, stderr);
            return (-1, $"{file} did not finish within {timeout}:\n{output}");
        }

        await Task.WhenAll(stdout, stderr);
        return (process.ExitCode, output.ToString());
    }

    private static async Task PumpAsync(StreamReader reader, StringBuilder output)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            lock (output)
            {
                output.AppendLine(line);
            }
        }
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Gateway.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No folder above {AppContext.BaseDirectory} contains Gateway.sln; run the tests from the repository.");
    }
}
