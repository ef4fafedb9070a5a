using System.Net.Http.Headers;
using System.Text.Json;
using Gateway.Clients;
using Gateway.Generations;
using Gateway.Upstream;
using Microsoft.Net.Http.Headers;
using Yarp.ReverseProxy.Forwarder;

namespace Gateway.Proxy;

/// <summary>
/// The header policy of the proxy, and the bookkeeping of submits. Only <c>x-fal-*</c>, <c>Accept</c>,
/// <c>User-Agent</c> and the body's <c>Content-Type</c>/<c>Content-Length</c> go upstream: the caller's
/// <c>Authorization</c>, <c>X-Api-Key</c> and cookies never do. The FAL key is added here and nowhere else.
/// </summary>
internal sealed partial class FalProxyTransformer(
    FalProxyTarget target,
    Uri destination,
    string falKey,
    Owner owner,
    ImageRequest? submitted,
    GenerationSubmitter submitter,
    ILogger logger,
    IReadOnlyDictionary<string, string>? submitHeaders = null) : HttpTransformer
{
    public const string ClientProxyName = "mai-image-gateway";

    public override async ValueTask TransformRequestAsync(
        HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
    {
        await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);

        foreach (var name in proxyRequest.Headers.Select(h => h.Key).ToList())
        {
            var keep = name.StartsWith("x-fal-", StringComparison.OrdinalIgnoreCase)
                && !name.Equals(FalProxyTarget.HeaderName, StringComparison.OrdinalIgnoreCase)
                && !name.Equals("x-fal-client-proxy", StringComparison.OrdinalIgnoreCase);
            keep |= name.Equals(HeaderNames.Accept, StringComparison.OrdinalIgnoreCase)
                || name.Equals(HeaderNames.UserAgent, StringComparison.OrdinalIgnoreCase);
            if (!keep)
            {
                proxyRequest.Headers.Remove(name);
            }
        }

        if (proxyRequest.Content is { } content)
        {
            foreach (var name in content.Headers.Select(h => h.Key).ToList())
            {
                if (!name.Equals(HeaderNames.ContentType, StringComparison.OrdinalIgnoreCase)
                    && !name.Equals(HeaderNames.ContentLength, StringComparison.OrdinalIgnoreCase))
                {
                    content.Headers.Remove(name);
                }
            }
        }

        if (proxyRequest.Headers.Accept.Count == 0)
        {
            proxyRequest.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        }

        foreach (var (name, value) in submitHeaders ?? new Dictionary<string, string>())
        {
            proxyRequest.Headers.Remove(name);
            proxyRequest.Headers.TryAddWithoutValidation(name, value);
        }

        proxyRequest.Headers.Authorization = new AuthenticationHeaderValue("Key", falKey);
        proxyRequest.Headers.TryAddWithoutValidation("x-fal-client-proxy", ClientProxyName);
        proxyRequest.RequestUri = destination;
    }

    public override async ValueTask<bool> TransformResponseAsync(
        HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
    {
        var copyBody = await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken);

        // As fal's own proxy: the body is re-framed by Kestrel, and the handler has already decompressed it.
        httpContext.Response.Headers.Remove(HeaderNames.ContentLength);
        httpContext.Response.Headers.Remove(HeaderNames.ContentEncoding);

        FalAnswered = proxyResponse is not null;
        FalSucceeded = proxyResponse is { IsSuccessStatusCode: true };
        if (target.Operation == FalProxyOperation.Submit && submitted is not null && proxyResponse is { IsSuccessStatusCode: true })
        {
            // fal's answer is small; buffer it to learn the request id, then let it flow to the caller unchanged.
            await proxyResponse.Content.LoadIntoBufferAsync(cancellationToken);
            var body = await proxyResponse.Content.ReadAsByteArrayAsync(cancellationToken);
            var answer = TryRead(body);
            if (answer is null || string.IsNullOrWhiteSpace(answer.RequestId))
            {
                LogUnreadableSubmit(logger, (int)proxyResponse.StatusCode);
            }
            else
            {
                // Not cancellable: the job exists at fal now, and its owner must be recorded even if the caller left.
                await submitter.RecordSubmittedAsync(owner, target.EndpointId!, answer, submitted);
                RecordedId = answer.RequestId;
            }
        }

        return copyBody;
    }

    /// <summary>The request id of a submit fal accepted and the gateway recorded, once the response has been read.</summary>
    public string? RecordedId { get; private set; }

    /// <summary>Whether fal answered at all (a refusal gives the client's limit units back; silence keeps them).</summary>
    public bool FalAnswered { get; private set; }

    /// <summary>Whether fal answered with success (a run that succeeded has produced, and billed, its images).</summary>
    public bool FalSucceeded { get; private set; }

    private static FalSubmitResponse? TryRead(byte[] body)
    {
        try
        {
            return JsonSerializer.Deserialize(body, FalJsonContext.Default.FalSubmitResponse);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "fal accepted a proxied submit ({StatusCode}) but its answer had no readable request_id; the job is not recorded")]
    private static partial void LogUnreadableSubmit(ILogger logger, int statusCode);
}
