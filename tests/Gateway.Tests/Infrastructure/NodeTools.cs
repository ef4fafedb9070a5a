using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using Gateway.Tests.Process;

namespace Gateway.Tests.Infrastructure;

/// <summary>Runs node and npm for the tests that prove the gateway with JavaScript tooling (fal's client, a generated client, a linter).</summary>
public static class NodeTools
{
    public static readonly TimeSpan NpmTimeout = TimeSpan.FromMinutes(5);

    /// <summary>A folder of the repository (e.g. tests/FalClient).</summary>
    public static string Folder(params string[] parts) => Path.Combine([ProcessGateway.RepoRoot, .. parts]);

    /// <summary>Fails the test, saying how to install it, when <paramref name="tool"/> is not on the PATH.</summary>
    public static async Task RequireToolAsync(string tool)
    {
        try
        {
            var (exit, _) = await RunAsync(tool, ["--version"], Directory.GetCurrentDirectory(), new Dictionary<string, string?>(), TimeSpan.FromSeconds(30));
            Assert.True(exit == 0, $"'{tool} --version' failed; install Node.js and npm: apt-get install -y nodejs npm");
        }
        catch (Win32Exception)
        {
            Assert.Fail($"{tool} is not installed, and this test needs it: apt-get install -y nodejs npm");
        }
    }

    /// <summary>
    /// <c>npm ci</c> in <paramref name="folder"/> unless <paramref name="installed"/> (a path inside node_modules) is there
    /// already (.ci/run installs every folder up front); the committed package-lock.json pins every package.
    /// </summary>
    public static async Task InstallAsync(string folder, string installed)
    {
        await RequireToolAsync("node");
        if (File.Exists(Path.Combine(folder, "node_modules", installed)))
        {
            return;
        }

        await RequireToolAsync("npm");
        var (exit, output) = await RunAsync("npm", ["ci", "--no-audit", "--no-fund"], folder, new Dictionary<string, string?>(), NpmTimeout);
        Assert.True(exit == 0, $"npm ci in {folder} failed ({exit}); the npm registry must be reachable:\n{output}");
    }

    /// <summary>Runs a program to its end (killed after <paramref name="timeout"/>), with stdout and stderr interleaved.</summary>
    public static async Task<(int Exit, string Output)> RunAsync(
        string file, string[] arguments, string directory, Dictionary<string, string?> environment, TimeSpan timeout)
    {
        var (exit, output, _) = await RunWithStdoutAsync(file, arguments, directory, environment, timeout);
        return (exit, output);
    }

    /// <summary>As <see cref="RunAsync"/>, and stdout on its own (a report a tool prints there, without its notices on stderr).</summary>
    public static async Task<(int Exit, string Output, string Stdout)> RunWithStdoutAsync(
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
        var standardOutput = new StringBuilder();
        var stdout = PumpAsync(process.StandardOutput, output, standardOutput);
        var stderr = PumpAsync(process.StandardError, output, null);
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
            return (-1, $"{file} did not finish within {timeout}:\n{output}", standardOutput.ToString());
        }

        await Task.WhenAll(stdout, stderr);
        return (process.ExitCode, output.ToString(), standardOutput.ToString());
    }

    private static async Task PumpAsync(StreamReader reader, StringBuilder output, StringBuilder? only)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            lock (output)
            {
                output.AppendLine(line);
                only?.AppendLine(line);
            }
        }
    }
}
