using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using Gateway.Generations;
using Gateway.Upstream;
using Microsoft.Extensions.Options;

namespace Gateway.Proxy;

/// <summary>fal's answer to a status call, as the caller gets it: status code, the headers a client may read, the body.</summary>
internal sealed record ProxiedStatus(int StatusCode, KeyValuePair<string, string[]>[] Headers, byte[] Body)
{
    public bool IsSuccess => StatusCode is >= 200 and < 300;
}

/// <summary>
/// Status polls through the proxy (<c>GET …/requests/{id}/status</c>), as /v1 status polls are: one call to fal per
/// generation (and <c>logs</c> choice) per <c>Gateway__StatusCacheTtl</c> on this replica, whatever the number of
/// pollers, each of whom gets fal's answer as fal gave it (status code, body, and its headers but the hop-by-hop ones,
/// <c>Content-Encoding</c> and <c>Date</c>), so @fal-ai/client polls unchanged. Only 2xx answers are kept; an error
/// goes to the callers already waiting for it and no further. The call carries the gateway's headers only (the FAL
/// key, <c>Accept</c>, <c>x-fal-client-proxy</c>, <c>traceparent</c>): a shared answer cannot honour one caller's.
/// </summary>
internal sealed partial class ProxyStatusCoalescer(
    FalProxyInvoker invoker,
    RequestCoalescer coalescer,
    IOptions<GenerationOptions> generationOptions,
    IOptions<FalOptions> falOptions,
    IOptions<FalProxyOptions> proxyOptions,
    ILogger<ProxyStatusCoalescer> logger)
{
    private static readonly HashSet<string> NotRelayed = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
        "TE", "Trailer", "Content-Length", "Content-Encoding", "Date",
    };

    private static readonly MediaTypeWithQualityHeaderValue Json = new("application/json");

    private readonly ConditionalWeakTable<FalProxyTarget, string> _keys = new();

    public async Task AnswerAsync(HttpContext context, FalProxyTarget target)
    {
        // Keyed by path and query (the host's base URL is the same for every key); the URL is built only to ask fal. A
        // target parsed once serves every poll of its header value (FalProxyHandler), so its key is built once with it.
        var key = _keys.GetValue(target, static t => "proxy-status:" + t.PathAndQuery());
        var status = await coalescer.RunAsync(
            key, generationOptions.Value.StatusCacheTtl, static (ask, _) => ask.Self.AskFalAsync(ask.Target),
            (Self: this, Target: target), context.RequestAborted, cache: "proxy_status", keep: static answer => answer.IsSuccess);

        var response = context.Response;
        response.StatusCode = status.StatusCode;
        foreach (var (name, values) in status.Headers)
        {
            response.Headers[name] = values;
        }

        response.ContentLength = status.Body.Length;
        await response.Body.WriteAsync(status.Body, context.RequestAborted);
    }

    /// <summary>One status call, bounded by <c>FalProxy__ActivityTimeout</c> and by no caller: the answer is shared.</summary>
    private async Task<ProxiedStatus> AskFalAsync(FalProxyTarget target)
    {
        var destination = target.Destination(falOptions.Value);
        using var timeout = new CancellationTokenSource(proxyOptions.Value.ActivityTimeout);
        using var request = new HttpRequestMessage(HttpMethod.Get, destination)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionOrLower, // as YARP sends the other proxied calls
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Key", falOptions.Value.EffectiveKey);
        request.Headers.Accept.Add(Json);
        request.Headers.TryAddWithoutValidation("x-fal-client-proxy", FalProxyTransformer.ClientProxyName);
        try
        {
            using var answer = await invoker.Invoker.SendAsync(request, timeout.Token);
            var body = await answer.Content.ReadAsByteArrayAsync(timeout.Token);
            var headers = answer.Headers.Concat(answer.Content.Headers)
                .Where(h => !NotRelayed.Contains(h.Key))
                .Select(h => KeyValuePair.Create(h.Key, h.Value.ToArray()))
                .ToArray();
            return new ProxiedStatus((int)answer.StatusCode, headers, body);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            LogStatusFailed(logger, "timeout");
            return new ProxiedStatus(StatusCodes.Status504GatewayTimeout, [], []); // what YARP answers when fal is silent
        }
        catch (HttpRequestException e)
        {
            LogStatusFailed(logger, e.HttpRequestError.ToString());
            return new ProxiedStatus(StatusCodes.Status502BadGateway, [], []); // and when fal cannot be reached
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A proxied status call to fal failed ({Error})")]
    private static partial void LogStatusFailed(ILogger logger, string error);
}
