using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Gateway.Tests.Process;

/// <summary>
/// The gateway as its own OS process (<c>dotnet Gateway.dll</c>), configured only through environment
/// variables, as a container runs it. Keeps the last lines of its stdout and stderr for assertion
/// messages, and kills it on dispose. Free of xunit: the benchmark links this file too.
/// </summary>
public sealed class ProcessGateway : IDisposable
{
    public const int KeptLines = 400;

    /// <summary>Inherited variables that would configure the child behind the caller's back.</summary>
    private static readonly string[] ForeignPrefixes =
        ["ASPNETCORE_", "DOTNET_ENVIRONMENT", "ConnectionStrings__", "Fal__", "FAL_KEY", "Gateway__", "Clients__", "Serilog__", "Webhooks__", "OTEL_"];

    /// <summary>Read from the Dockerfile once, on the first start of a published build.</summary>
    private static readonly Lazy<Dictionary<string, string>> ImageEnvironment = new(ReadImageEnvironment);

    private readonly System.Diagnostics.Process _process;
    private readonly ConcurrentQueue<string> _output = new();
    private readonly int _keptLines;
    private readonly string? _outputFile;

    private ProcessGateway(System.Diagnostics.Process process, int port, int keptLines, string? outputFile)
    {
        _process = process;
        _keptLines = keptLines;
        _outputFile = outputFile;
        Port = port;
        BaseAddress = new Uri($"http://127.0.0.1:{port}");
    }

    /// <summary>The directory holding Gateway.sln, found by walking up from the running assembly.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary><c>src/Gateway/bin/{configuration}/net10.0/Gateway.dll</c>, as <c>dotnet build</c> leaves it.</summary>
    public static string BuiltDll(string configuration) =>
        Path.Combine(RepoRoot, "src", "Gateway", "bin", configuration, "net10.0", "Gateway.dll");

    /// <summary>
    /// <c>dotnet publish</c>es what the Dockerfile ships into <paramref name="output"/>: Release, for this machine's
    /// architecture (the Dockerfile's <c>-a $TARGETARCH</c>), which makes it self-contained and trimmed
    /// (src/Gateway/Gateway.csproj). Returns its executable, the image's entry point; throws with the publish's output
    /// when it fails, and stops it when <paramref name="cancellationToken"/> fires.
    /// </summary>
    public static async Task<string> PublishAsync(string output, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("dotnet",
            ["publish", Path.Combine(RepoRoot, "src", "Gateway"), "-c", "Release", "-a", Architecture(), "-o", output,
             "--nologo", "-v", "minimal", "--disable-build-servers"])
        {
            WorkingDirectory = RepoRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };

        // The caller's MSBuild settings (a test runner's, dotnet run's) belong to its own build, not to this one.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(name);
        }

        var log = new System.Text.StringBuilder();
        using var process = new System.Diagnostics.Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        var executable = PublishedExecutable(output);
        if (process.ExitCode != 0 || !File.Exists(executable))
        {
            throw new InvalidOperationException($"dotnet publish failed ({process.ExitCode}):\n{log}");
        }

        return executable;
    }

    /// <summary>The self-contained gateway's executable in a <see cref="PublishAsync"/> output, the image's entry point.</summary>
    public static string PublishedExecutable(string output) => Path.Combine(output, "Gateway");

    /// <summary>
    /// The <c>ENV DOTNET_…</c> and <c>ENV MALLOC_…</c> lines of the Dockerfile's gateway stage (runtime and C library
    /// settings that exist only as environment variables), so that a published build started here runs as the image does.
    /// </summary>
    public static IReadOnlyDictionary<string, string> ImageRuntimeEnvironment => ImageEnvironment.Value;

    public Uri BaseAddress { get; }

    public int Port { get; }

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>The last lines the process wrote (stdout and stderr, interleaved as they arrived); all of them with <c>keptLines: int.MaxValue</c>.</summary>
    public string Output => string.Join('\n', Lines().TakeLast(_keptLines));

    /// <summary>
    /// Starts <paramref name="dll"/> on a free loopback port with <paramref name="environment"/> on top of
    /// ASPNETCORE_ENVIRONMENT=Production and ASPNETCORE_URLS=http://127.0.0.1:{port}. With <paramref name="outputFile"/>
    /// its stdout and stderr go to that file, as a container runtime keeps them, instead of through a pipe to this
    /// process (a benchmark's thousands of request lines a second would otherwise cost this process a core).
    /// </summary>
    public static ProcessGateway Start(
        string dll, IReadOnlyDictionary<string, string> environment, int? port = null, int keptLines = KeptLines, string? outputFile = null)
    {
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"The gateway is not built at {dll}: run 'dotnet build' (or publish) first.", dll);
        }

        var chosen = port ?? FreePort();
        // A .dll runs on the shared framework through the dotnet host; the published build is its own executable.
        var published = !dll.EndsWith(".dll", StringComparison.OrdinalIgnoreCase);
        string[] command = published ? [dll] : [DotnetHost(), dll];
        // exec: the shell becomes the gateway, so the process id (and /proc/{pid}) is the gateway's own.
        var start = outputFile is null
            ? new ProcessStartInfo(command[0], command[1..])
            : new ProcessStartInfo("/bin/sh", ["-c", "out=$1; shift; exec \"$@\" >>\"$out\" 2>&1", "sh", outputFile]);
        start.WorkingDirectory = Path.GetDirectoryName(dll)!; // the content root: appsettings.json sits beside the dll
        start.RedirectStandardOutput = outputFile is null;
        start.RedirectStandardError = outputFile is null;
        start.UseShellExecute = false;
        foreach (var name in start.Environment.Keys.Where(k => ForeignPrefixes.Any(p => k.StartsWith(p, StringComparison.OrdinalIgnoreCase))).ToList())
        {
            start.Environment.Remove(name);
        }

        if (published)
        {
            // The published build runs as the image runs it: with the runtime settings its stage sets.
            foreach (var (name, value) in ImageRuntimeEnvironment)
            {
                start.Environment[name] = value;
            }
        }

        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{chosen.ToString(CultureInfo.InvariantCulture)}";
        // "Now listening on …" (and the stop) at any default level: how WaitUntilReadyAsync knows the port is this process's.
        start.Environment["Serilog__MinimumLevel__Override__Microsoft.Hosting.Lifetime"] = "Information";
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        if (outputFile is not null)
        {
            // The shell drops variables whose names it cannot hold (a Serilog override names a category with dots):
            // those reach the gateway through env(1), which the shell execs with the command.
            var unnamed = start.Environment.Where(v => !IsShellName(v.Key)).Select(v => $"{v.Key}={v.Value}").ToList();
            if (unnamed.Count > 0)
            {
                start.ArgumentList.Add("/usr/bin/env");
                unnamed.ForEach(start.ArgumentList.Add);
            }

            command.ToList().ForEach(start.ArgumentList.Add);
        }

        var process = new System.Diagnostics.Process { StartInfo = start };
        var gateway = new ProcessGateway(process, chosen, keptLines, outputFile);
        if (outputFile is not null)
        {
            process.Start();
            return gateway;
        }

        process.OutputDataReceived += (_, e) => gateway.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => gateway.Keep(e.Data is null ? null : "[stderr] " + e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return gateway;
    }

    /// <summary>True once the process wrote that Kestrel listens on its port (Microsoft.Hosting.Lifetime, Information).</summary>
    public bool IsListening => Lines().Any(line => line.Contains("Now listening on", StringComparison.Ordinal)
        && line.Contains($"127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}", StringComparison.Ordinal));

    /// <summary>True when the process ended because another socket had taken its port first.</summary>
    public bool LostItsPort()
    {
        if (!_process.HasExited)
        {
            return false;
        }

        _process.WaitForExit(); // exited: this only waits for the last lines of its output
        return Lines().Any(line => line.Contains("address already in use", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>
    /// Polls <c>/health/ready</c> until it answers 200 and the process says it listens on the port: the port was
    /// free when <see cref="FreePort"/> looked, but something else may have bound it before this process did, and
    /// then the 200 is another server's. Throws with the process output if it exits or time runs out.
    /// </summary>
    public async Task WaitUntilReadyAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        using var http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
        var clock = Stopwatch.StartNew();
        var last = "no answer";
        while (clock.Elapsed < timeout)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"The gateway exited with code {_process.ExitCode} before it was ready.\n{Output}");
            }

            try
            {
                using var response = await http.GetAsync(new Uri("/health/ready", UriKind.Relative), cancellationToken);
                if (response.StatusCode == HttpStatusCode.OK && IsListening && !_process.HasExited)
                {
                    return;
                }

                last = response.StatusCode == HttpStatusCode.OK ? "200, but this process does not say it listens on the port" : $"{(int)response.StatusCode}";
            }
            catch (HttpRequestException e)
            {
                last = e.Message;
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                last = "no answer within 5 s"; // e.g. a socket that accepts and never answers holds the port
            }

            await Task.Delay(100, cancellationToken);
        }

        throw new TimeoutException($"The gateway was not ready within {timeout} (last: {last}).\n{Output}");
    }

    /// <summary>Sends SIGTERM, as Kubernetes does to stop a pod.</summary>
    public void Terminate()
    {
        using var kill = System.Diagnostics.Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill -TERM {_process.Id} failed with {kill.ExitCode}.");
        }
    }

    /// <summary>True when the process exited within <paramref name="timeout"/>.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancellation.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Resident set size now and at its peak, in KiB, from /proc/{pid}/status (Linux).</summary>
    public (long RssKiB, long PeakRssKiB) Memory()
    {
        long rss = 0, peak = 0;
        foreach (var line in File.ReadLines($"/proc/{_process.Id.ToString(CultureInfo.InvariantCulture)}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                rss = KiB(line);
            }
            else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                peak = KiB(line);
            }
        }

        return (rss, peak);

        static long KiB(string line) => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // never started or already gone
        }

        _process.Dispose();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static bool IsShellName(string name) =>
        name.Length > 0 && !char.IsAsciiDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    private IEnumerable<string> Lines() =>
        _outputFile is null ? _output : File.Exists(_outputFile) ? File.ReadLines(_outputFile) : [];

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        _output.Enqueue(line);
        while (_output.Count > _keptLines && _output.TryDequeue(out _))
        {
        }
    }

    private static Dictionary<string, string> ReadImageEnvironment()
    {
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        var inGateway = false;
        foreach (var raw in File.ReadLines(Path.Combine(RepoRoot, "Dockerfile")))
        {
            var line = raw.Trim();
            if (line.StartsWith("FROM ", StringComparison.OrdinalIgnoreCase))
            {
                inGateway = line.EndsWith(" AS gateway", StringComparison.OrdinalIgnoreCase);
            }
            else if (inGateway && (line.StartsWith("ENV DOTNET_", StringComparison.Ordinal) || line.StartsWith("ENV MALLOC_", StringComparison.Ordinal))
                && line[4..].Split('=', 2) is [var name, var value])
            {
                settings[name] = value;
            }
        }

        return settings;
    }

    private static string Architecture() => System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => "x64",
        System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
        var other => throw new PlatformNotSupportedException($"The gateway's image is built for x64 and arm64, not {other}."),
    };

    /// <summary>The dotnet host that runs this process (the CLI names it in DOTNET_HOST_PATH), else the one on PATH.</summary>
    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host
        : Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath!
        : "dotnet";

    private static string FindRepoRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Gateway.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No Gateway.sln above {AppContext.BaseDirectory}: run from inside the repository.");
    }
}
