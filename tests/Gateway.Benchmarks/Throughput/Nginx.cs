using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Gateway.Tests.Process;

namespace Gateway.Benchmarks.Throughput;

/// <summary>
/// Debian's nginx, as two servers of their own (own prefix, pid and logs, foreground, stopped with <c>-s stop</c>):
/// a stub answering fal's queue API from its config (no application code), and a reverse proxy in front of it,
/// the reference the gateway's figures are divided by. Both run nginx's defaults (a worker per core) and log
/// every request to a file, buffered, as the gateway logs one line per request.
/// </summary>
internal sealed class NginxServer : IDisposable
{
    private const string App = "microsoft/mai-image-2.5";
    private const string AppPattern = @"microsoft/mai-image-2\.5";

    private readonly Process _process;
    private readonly string _prefix;
    private readonly string _config;
    private int _disposed;

    private NginxServer(Process process, string prefix, string config, int port)
    {
        _process = process;
        _prefix = prefix;
        _config = config;
        Port = port;
    }

    public int Port { get; }

    public Uri BaseAddress => new($"http://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}");

    public string AccessLog => Path.Combine(_prefix, "access.log");

    /// <summary>Stops the run with a plain message when nginx or wrk is missing: nothing here works without them.</summary>
    public static void RequireTools()
    {
        var missing = new[] { "nginx", "wrk" }.Where(tool => Tool(tool) == tool).ToList();
        if (missing.Count > 0)
        {
            throw new InvalidOperationException(
                $"the throughput mode needs Debian's {string.Join(" and ", missing)}: run 'apt-get install -y nginx wrk' (it measures the gateway against nginx, driven by wrk).");
        }
    }

    /// <summary>
    /// fal's queue API from nginx's config: a submit answers a fresh request id (<c>$request_id</c>, 32 hex digits)
    /// with fal's URLs; a status answers 202 IN_PROGRESS for ids starting 0–7 and 200 COMPLETED (with metrics) for
    /// the rest; a result answers fal's 400 while running and the model's output once completed. As fal does, every
    /// answer carries <c>x-fal-request-id</c>.
    /// </summary>
    public static Task<NginxServer> StartFalStubAsync(string directory, CancellationToken cancellationToken)
    {
        var port = ProcessGateway.FreePort();
        var self = $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}";
        string Urls(string id) =>
            $"\"request_id\":\"{id}\",\"response_url\":\"{self}/{App}/requests/{id}\",\"status_url\":\"{self}/{App}/requests/{id}/status\",\"cancel_url\":\"{self}/{App}/requests/{id}/cancel\"";
        var result = "{\"images\":[{\"url\":\"https://v3.fal.media/files/penguin/bench-$1.png\",\"content_type\":\"image/png\","
            + "\"file_name\":\"bench.png\",\"file_size\":1843210,\"width\":1024,\"height\":1024}],\"description\":\"A lighthouse at dusk on a rocky coast\"}";
        var completed = "{\"status\":\"COMPLETED\"," + Urls("$1") + ",\"logs\":null,\"metrics\":{\"inference_time\":3.21}}";
        var server = $$"""
                location ~ ^/{{AppPattern}}(/edit)?$ {
                    add_header x-fal-request-id $request_id always;
                    return 200 '{{{Urls("$request_id")}},"status":"IN_QUEUE","queue_position":0}';
                }
                location ~ ^/{{AppPattern}}/requests/([0-7][0-9a-f]*)/status$ {
                    add_header x-fal-request-id $1 always;
                    return 202 '{"status":"IN_PROGRESS",{{Urls("$1")}},"logs":null}';
                }
                location ~ ^/{{AppPattern}}/requests/([0-9a-f]+)/status$ {
                    add_header x-fal-request-id $1 always;
                    return 200 '{{completed}}';
                }
                location ~ ^/{{AppPattern}}/requests/([0-7][0-9a-f]*)$ {
                    add_header x-fal-request-id $1 always;
                    return 400 '{"detail":"Request is still in progress"}';
                }
                location ~ ^/{{AppPattern}}/requests/([0-9a-f]+)$ {
                    add_header x-fal-request-id $1 always;
                    return 200 '{{result}}';
                }
                location ~ ^/{{AppPattern}}/requests/([0-9a-f]+)/cancel$ {
                    add_header x-fal-request-id $1 always;
                    return 202 '{"status":"CANCELLATION_REQUESTED"}';
                }
                location = /.well-known/jwks.json {
                    return 200 '{"keys":[]}';
                }
                location / {
                    return 404 '{"detail":"Not Found"}';
                }
            """;
        return StartAsync(Path.Combine(directory, "nginx-fal-stub"), port, "", server, cancellationToken);
    }

    /// <summary>nginx as a reverse proxy to <paramref name="upstream"/>, with pooled upstream connections (HTTP/1.1 keep-alive).</summary>
    public static Task<NginxServer> StartReverseProxyAsync(string directory, NginxServer upstream, CancellationToken cancellationToken)
    {
        var http = $$"""
                upstream fal {
                    server 127.0.0.1:{{upstream.Port.ToString(CultureInfo.InvariantCulture)}};
                    keepalive 64;
                }
            """;
        const string server = """
                location / {
                    proxy_pass http://fal;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                }
            """;
        return StartAsync(Path.Combine(directory, "nginx-proxy"), ProcessGateway.FreePort(), http, server, cancellationToken);
    }

    private static async Task<NginxServer> StartAsync(string prefix, int port, string http, string server, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(prefix);
        var config = Path.Combine(prefix, "nginx.conf");
        await File.WriteAllTextAsync(config, $$"""
            daemon off;
            worker_processes auto;
            pid {{prefix}}/nginx.pid;
            error_log {{prefix}}/error.log warn;
            events { worker_connections 4096; }
            http {
                access_log {{prefix}}/access.log combined buffer=64k flush=1s;
                default_type application/json;
                keepalive_requests 1000000;
                client_body_temp_path {{prefix}}/client_body;
                proxy_temp_path {{prefix}}/proxy;
                fastcgi_temp_path {{prefix}}/fastcgi;
                uwsgi_temp_path {{prefix}}/uwsgi;
                scgi_temp_path {{prefix}}/scgi;
            {{http}}
                server {
                    listen 127.0.0.1:{{port.ToString(CultureInfo.InvariantCulture)}};
            {{server}}
                }
            }
            """, cancellationToken);
        var start = new ProcessStartInfo(Tool("nginx"), ["-p", prefix, "-c", config])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var nginx = new NginxServer(process, prefix, config, port);
        for (var attempt = 0; attempt < 100; attempt++)
        {
            if (process.HasExited)
            {
                var errors = File.Exists(Path.Combine(prefix, "error.log")) ? await File.ReadAllTextAsync(Path.Combine(prefix, "error.log"), cancellationToken) : "";
                throw new InvalidOperationException($"nginx ({config}) exited with {process.ExitCode}: {errors}");
            }

            if (await AcceptsAsync(port, cancellationToken))
            {
                return nginx;
            }

            await Task.Delay(50, cancellationToken);
        }

        nginx.Dispose();
        throw new InvalidOperationException($"nginx ({config}) did not listen on {port}.");
    }

    /// <summary>Lines of the access log that contain <paramref name="text"/> (the log is flushed every second).</summary>
    public int CountLogged(string text) =>
        File.Exists(AccessLog) ? File.ReadLines(AccessLog).Count(line => line.Contains(text, StringComparison.Ordinal)) : 0;

    private static async Task<bool> AcceptsAsync(int port, CancellationToken cancellationToken)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", port, cancellationToken);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>The tool's full path from PATH (and /usr/sbin, where Debian puts nginx), or its bare name when it is nowhere.</summary>
    public static string Tool(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Append("/usr/sbin")
            .Select(directory => Path.Combine(directory, name)).FirstOrDefault(File.Exists) ?? name;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        if (!_process.HasExited)
        {
            // nginx's own stop: the master ends its workers (a SIGKILLed master would leave them behind).
            using var stop = Process.Start(new ProcessStartInfo(Tool("nginx"), ["-p", _prefix, "-c", _config, "-s", "stop"]) { RedirectStandardError = true });
            stop?.WaitForExit(5000);
            if (!_process.WaitForExit(5000))
            {
                _process.Kill(entireProcessTree: true);
            }
        }

        _process.Dispose();
    }
}
