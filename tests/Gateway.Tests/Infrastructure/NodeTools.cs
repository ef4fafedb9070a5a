using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace Gateway.Tests.Infrastructure;

/// <summary>The npm folders under tests/ (each with a committed package-lock.json), installed with <c>npm ci</c> when missing.</summary>
public static class NodeTools
{
    private static readonly SemaphoreSlim Installing = new(1, 1);

    public static string RepoRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Gateway.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("The repository root (Gateway.sln) was not found above the test binaries.");
    }

    /// <summary>tests/<paramref name="name"/> with its node_modules; <c>npm ci</c> runs first when <paramref name="installed"/> is missing.</summary>
    public static async Task<string> InstalledFolderAsync(string name, string installed)
    {
        var folder = Path.Combine(RepoRoot(), "tests", name);
        await InstallAsync(folder, installed);
        return folder;
    }

    /// <summary><c>npm ci</c> in <paramref name="folder"/> (any npm folder of the repository) unless <paramref name="installed"/> is there.</summary>
    private static async Task InstallAsync(string folder, string installed)
    {
        await Installing.WaitAsync(TestContext.Current.CancellationToken);
        try
        {
            if (!File.Exists(Path.Combine(folder, "node_modules", installed)))
            {
                var (exit, output) = await RunAsync("npm", ["ci", "--no-audit", "--no-fund"], folder, TimeSpan.FromMinutes(5));
                Assert.True(exit == 0, $"npm ci in {folder} failed ({exit}); it needs Node.js, npm (apt-get install -y nodejs npm) and the npm registry:\n{output}");
            }
        }
        finally
        {
            Installing.Release();
        }
    }

    /// <summary>tests/{name} in this repository.</summary>
    public static string Folder(string name) => Path.Combine(RepoRoot(), "tests", name);

    /// <summary>A folder of this repository by its path from the root (e.g. clients/typescript).</summary>
    public static string RepoFolder(params string[] parts) => Path.Combine([RepoRoot(), .. parts]);

    /// <summary>Node and, unless <paramref name="marker"/> (a path under node_modules) exists, an <c>npm ci</c> from the committed lock file.</summary>
    public static async Task PrepareAsync(string folder, string marker)
    {
        await RequireToolAsync("node", "apt-get install -y nodejs npm");
        if (!File.Exists(Path.Combine(folder, "node_modules", marker)))
        {
            await RequireToolAsync("npm", "apt-get install -y nodejs npm");
            await InstallAsync(folder, marker);
        }
    }

    public static async Task RequireToolAsync(string tool, string install)
    {
        try
        {
            var (exit, _) = await RunAsync(tool, ["--version"], Directory.GetCurrentDirectory(), TimeSpan.FromSeconds(30));
            Assert.True(exit == 0, $"'{tool} --version' failed; install it: {install}");
        }
        catch (InvalidOperationException)
        {
            Assert.Fail($"{tool} is not installed, and these tests need it: {install}");
        }
    }

    /// <summary>Runs a tool to its end within <paramref name="timeout"/> (killed after it); its exit code and output.</summary>
    public static async Task<(int Exit, string Output)> RunAsync(string file, string[] arguments, string directory, TimeSpan timeout,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        var (exit, output, _) = await RunWithStdoutAsync(file, arguments, directory, timeout, environment);
        return (exit, output);
    }

    /// <summary>As <see cref="RunAsync(string, string[], string, TimeSpan, IReadOnlyDictionary{string, string?}?)"/>, and stdout on its own (a report a tool prints there, without its notices on stderr).</summary>
    public static async Task<(int Exit, string Output, string Stdout)> RunWithStdoutAsync(string file, string[] arguments, string directory,
        TimeSpan timeout, IReadOnlyDictionary<string, string?>? environment = null)
    {
        using var process = Start(file, arguments, directory, environment);
        var output = new StringBuilder();
        var standardOutput = new StringBuilder();
        var pumps = Task.WhenAll(PumpAsync(process.StandardOutput, output, standardOutput), PumpAsync(process.StandardError, output));
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
            await pumps;
            return (-1, $"{file} did not finish within {timeout}:\n{output}", standardOutput.ToString());
        }

        await pumps;
        return (process.ExitCode, output.ToString(), standardOutput.ToString());
    }

    /// <summary>As the other overload, with the environment before the timeout.</summary>
    public static Task<(int Exit, string Output)> RunAsync(
        string file, string[] arguments, string directory, Dictionary<string, string?> environment, TimeSpan timeout) =>
        RunAsync(file, arguments, directory, timeout, environment);

    /// <summary>Starts a process with its output redirected (read it with <see cref="Pump"/>).</summary>
    public static System.Diagnostics.Process Start(string file, string[] arguments, string directory, IReadOnlyDictionary<string, string?>? environment = null)
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

        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
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

    private static async Task PumpAsync(StreamReader reader, StringBuilder output, StringBuilder? only = null)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            lock (output)
            {
                output.AppendLine(line);
            }

            only?.AppendLine(line);
        }
    }
}
