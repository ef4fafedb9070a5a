using System.Diagnostics;

namespace Deploy.Tests;

/// <summary>Prometheus' own checker, as an operator would run it on the rules before applying them.</summary>
internal static class Promtool
{
    private const string InstallHint =
        "promtool is needed to check the alert rules and was not found on PATH. It comes in Debian's `prometheus` " +
        "package; .ci/run extracts just the binary when it is missing (apt-get download prometheus, then " +
        "dpkg-deb --fsys-tarfile … | tar -x ./usr/bin/promtool). Or set PROMTOOL to a promtool binary.";

    public static (int ExitCode, string Output) Run(params string[] arguments)
    {
        var start = new ProcessStartInfo(Find())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start promtool.");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(1)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("promtool did not finish within a minute.");
        }

        return (process.ExitCode, stdout + stderr.Result);
    }

    private static string Find()
    {
        if (Environment.GetEnvironmentVariable("PROMTOOL") is { Length: > 0 } configured)
        {
            return File.Exists(configured) ? configured : throw new InvalidOperationException($"PROMTOOL is set to {configured}, which does not exist.");
        }

        return (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, "promtool"))
            .FirstOrDefault(File.Exists) ?? throw new InvalidOperationException(InstallHint);
    }
}
