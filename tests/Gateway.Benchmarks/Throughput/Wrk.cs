using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Gateway.Benchmarks.Throughput;

/// <summary>What one wrk run measured; <see cref="Errors"/> counts socket errors and answers that were not 2xx/3xx.</summary>
internal sealed record WrkFigures(double RequestsPerSecond, double P50Ms, double P99Ms, long Requests, long Errors, string Raw);

/// <summary>Debian's wrk: one thread, a fixed number of connections, a fixed time; its latency distribution read back.</summary>
internal static partial class Wrk
{
    public const int Threads = 1;
    public const int Connections = 32;

    public static async Task<WrkFigures> RunAsync(Uri url, IReadOnlyDictionary<string, string> headers, TimeSpan duration, CancellationToken cancellationToken)
    {
        var arguments = new List<string>
        {
            "-t", Threads.ToString(CultureInfo.InvariantCulture),
            "-c", Connections.ToString(CultureInfo.InvariantCulture),
            "-d", $"{(int)duration.TotalSeconds}s",
            "--timeout", "5s",
            "--latency",
        };
        foreach (var (name, value) in headers)
        {
            arguments.Add("-H");
            arguments.Add($"{name}: {value}");
        }

        arguments.Add(url.ToString());
        var start = new ProcessStartInfo(NginxServer.Tool("wrk"), arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var errors = process.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw;
        }

        var text = await output + await errors;
        if (process.ExitCode != 0 || RequestsPerSecond().Match(text) is not { Success: true } rate)
        {
            throw new InvalidOperationException($"wrk {url} failed ({process.ExitCode}): {text}");
        }

        var requests = RequestCount().Match(text);
        var socketErrors = SocketErrors().Match(text);
        var non2xx = Non2xx().Match(text);
        var failed = (non2xx.Success ? long.Parse(non2xx.Groups[1].Value, CultureInfo.InvariantCulture) : 0)
            + (socketErrors.Success ? socketErrors.Groups.Values.Skip(1).Sum(g => long.Parse(g.Value, CultureInfo.InvariantCulture)) : 0);
        return new WrkFigures(
            double.Parse(rate.Groups[1].Value, CultureInfo.InvariantCulture),
            Percentile(text, "50%"),
            Percentile(text, "99%"),
            long.Parse(requests.Groups[1].Value, CultureInfo.InvariantCulture),
            failed,
            text);
    }

    /// <summary>A line of wrk's latency distribution ("99%    1.23ms"), in milliseconds.</summary>
    private static double Percentile(string text, string which)
    {
        var match = Regex.Match(text, @"^\s*" + Regex.Escape(which) + @"\s+([\d.]+)(us|ms|s)\s*$", RegexOptions.Multiline);
        if (!match.Success)
        {
            throw new InvalidOperationException($"wrk printed no {which} latency: {text}");
        }

        var value = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        return match.Groups[2].Value switch { "us" => value / 1000, "s" => value * 1000, _ => value };
    }

    [GeneratedRegex(@"Requests/sec:\s+([\d.]+)")]
    private static partial Regex RequestsPerSecond();

    [GeneratedRegex(@"(\d+) requests in")]
    private static partial Regex RequestCount();

    [GeneratedRegex(@"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")]
    private static partial Regex SocketErrors();

    [GeneratedRegex(@"Non-2xx or 3xx responses: (\d+)")]
    private static partial Regex Non2xx();
}
