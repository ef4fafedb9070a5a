using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace Gateway.Tests.Infrastructure;

/// <summary>Runs the npm folders under tests/ (node --test suites) from the dotnet test run, with bounded time.</summary>
public static class NodeTools
{
    private static readonly TimeSpan NpmTimeout = TimeSpan.FromMinutes(5);

    /// <summary>tests/{name} in this repository.</summary>
    public static string Folder(string name) => Path.Combine(RepoRoot(), "tests", name);

    /// <summary>Node and, unless <paramref name="marker"/> (a path under node_modules) exists, an <c>npm ci</c> from the committed lock file.</summary>
    public static async Task PrepareAsync(string folder, string marker)
    {
        await RequireToolAsync("node", "apt-get install -y nodejs npm");
        if (!File.Exists(Path.Combine(folder, "node_modules", marker)))
        {
            await RequireToolAsync("npm", "apt-get install -y nodejs npm");
            var (exit, output) = await RunAsync("npm", ["ci", "--no-audit", "--no-fund"], folder, new Dictionary<string, string?>(), NpmTimeout);
            Assert.True(exit == 0, $"npm ci in {folder} failed ({exit}); the npm registry must be reachable:\n{output}");
        }
    }

    public static async Task RequireToolAsync(string tool, string install)
    {
        try
        {
            var (exit, _) = await RunAsync(tool, ["--version"], Directory.GetCurrentDirectory(), new Dictionary<string, string?>(), TimeSpan.FromSeconds(30));
            Assert.True(exit == 0, $"'{tool} --version' failed; install it: {install}");
        }
        catch (Win32Exception)
        {
            Assert.Fail($"{tool} is not installed, and these tests need it: {install}");
        }
    }

    /// <summary>Runs <paramref name="file"/>; <paramref name="environment"/> entries with a null value are removed from the child's environment.</summary>
    public static async Task<(int Exit, string Output)> RunAsync(
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

    private static readonly SemaphoreSlim Installing = new(1, 1);

    /// <summary>
    /// tests/<paramref name="name"/>, prepared (<see cref="PrepareAsync"/>) by one test at a time: several test classes share a
    /// folder, and two <c>npm ci</c> in one folder at once would trip over each other.
    /// </summary>
    public static async Task<string> InstalledFolderAsync(string name, string marker)
    {
        var folder = Folder(name);
        await Installing.WaitAsync(TestContext.Current.CancellationToken);
        try
        {
            await PrepareAsync(folder, marker);
        }
        finally
        {
            Installing.Release();
        }

        return folder;
    }

    /// <summary>Starts a long-running tool (a server) with its output redirected; read it with <see cref="Pump"/>, stop it with Kill.</summary>
    public static System.Diagnostics.Process Start(string file, string[] arguments, string directory)
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

        try
        {
            return System.Diagnostics.Process.Start(start)!;
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException($"'{file}' could not be started; install Node.js and npm: apt-get install -y nodejs npm", e);
        }
    }

    /// <summary>Copies the process's stdout and stderr, line by line, into <paramref name="output"/> until it exits.</summary>
    public static Task Pump(System.Diagnostics.Process process, StringBuilder output) =>
        Task.WhenAll(PumpAsync(process.StandardOutput, output), PumpAsync(process.StandardError, output));

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
