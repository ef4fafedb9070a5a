using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gateway.Clients;
using Gateway.Generations;
using Gateway.Upstream;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Forwarder;

namespace Gateway.Proxy;

/// <summary>
/// One proxied call: parse the target, prepare a submit (validated, limited), serve a stored result, or forward and
/// settle. One for the gateway (it keeps no request's state), not one per call: a poll builds nothing it does not use.
/// </summary>
internal sealed partial class FalProxyHandler(
    IHttpForwarder forwarder,
    FalProxyInvoker invoker,
    GenerationService generations,
    GenerationSubmitter submitter,
    ProxyStatusCoalescer statuses,
    ClientLimiter limiter,
    IOptions<FalOptions> falOptions,
    IOptions<FalProxyOptions> proxyOptions,
    IOptions<FalSubmitHeaders> submitHeaders,
    ILogger<FalProxyHandler> logger)
{
    /// <summary>Parsed GET targets kept, at most (the set is cleared when full): the pollers' few URLs, asked again and again.</summary>
    internal const int ParsedTargetLimit = 1024;

    private readonly FalOptions _fal = falOptions.Value;
    private readonly FalProxyOptions _proxy = proxyOptions.Value;
    private readonly ConcurrentDictionary<string, FalProxyTarget> _parsedGets = new(StringComparer.Ordinal);

    public async Task HandleAsync(HttpContext context)
    {
        var client = context.User.ClientName();
        var (target, refusal) = Parse(context.Request);
        if (target is null)
        {
            LogRefused(logger, client, context.Request.Method, refusal!.Detail);
            await WriteFalJsonAsync(context, refusal.Status, new JsonObject { ["message"] = refusal.Message, ["detail"] = refusal.Detail });
        }
        else if (target.IsSubmit)
        {
            await SubmitAsync(context, client, target);
        }
        else if (target.RequestId is not { } requestId || await TryServeOwnAsync(context, target, requestId) == false)
        {
            await ForwardAsync(context, target, submitted: null);
        }
    }

    /// <summary>
    /// The request's target. A status poll names the same URL every time, so an allowed GET target is parsed once and
    /// kept by its exact header value (immutable, as the options it was checked against); refusals are not kept.
    /// </summary>
    private (FalProxyTarget? Target, FalProxyRefusal? Refusal) Parse(HttpRequest request)
    {
        var header = request.Headers[FalProxyTarget.HeaderName];
        var key = header.Count == 1 && HttpMethods.IsGet(request.Method) ? header[0] : null;
        if (key is not null && _parsedGets.TryGetValue(key, out var known))
        {
            return (known, null);
        }

        var parsed = FalProxyTargetParser.Parse(header, request.Method, _fal, _proxy);
        if (key is not null && parsed.Target is { } target)
        {
            if (_parsedGets.Count >= ParsedTargetLimit)
            {
                _parsedGets.Clear();
            }

            _parsedGets.TryAdd(key, target);
        }

        return parsed;
    }

    /// <summary>A submit: validated and re-serialised, then sent under the client's limits, which settle from fal's answer.</summary>
    private async Task SubmitAsync(HttpContext context, string client, FalProxyTarget target)
    {
        if (await PrepareSubmitAsync(context, client, target) is not { } request)
        {
            return;
        }

        var (decision, forwarded) = await limiter.RunAsync(
            context.User.Owner(), request.NumImages ?? 1, context.Response.Headers,
            () => ForwardAsync(context, target, request),
            outcome => Settle(target, outcome),
            _ => false);
        if (forwarded is null)
        {
            await WriteFalJsonAsync(context, StatusCodes.Status429TooManyRequests, new JsonObject { ["detail"] = decision.RefusalDetail() });
        }
    }

    /// <summary>The validated input, in place of the body the caller sent; null when it was refused (the refusal is written).</summary>
    private async Task<ImageRequest?> PrepareSubmitAsync(HttpContext context, string client, FalProxyTarget target)
    {
        if (!ProxySubmitValidator.IsJson(context.Request.ContentType))
        {
            LogRefused(logger, client, context.Request.Method, "the submit body is not declared as JSON");
            await WriteFalJsonAsync(context, StatusCodes.Status415UnsupportedMediaType,
                new JsonObject { ["detail"] = "A submit body must be JSON: send it with Content-Type: application/json." });
            return null;
        }

        // The validator works with the request's services (validation resolves them): resolved for a submit, not per poll.
        var validator = context.RequestServices.GetRequiredService<ProxySubmitValidator>();
        var (request, errors) = await validator.ReadAsync(context, target.EndpointId == _fal.EditModel, context.RequestAborted);
        if (request is null)
        {
            LogInvalidSubmit(logger, client, target.EndpointId!);
            await WriteFalJsonAsync(context, StatusCodes.Status422UnprocessableEntity, errors!);
            return null;
        }

        // Only the validated input goes to fal, re-serialised: nothing the validation did not see can ride along.
        var body = JsonSerializer.SerializeToUtf8Bytes(request.ToFalInput(), FalInputJsonContext.Wire.FalImageInput);
        context.Request.Body = new MemoryStream(body);
        context.Request.ContentLength = body.Length;
        context.Request.ContentType = "application/json";
        return request;
    }

    /// <summary>
    /// A call about one request: 404 when it is not the caller's; a status from fal shared by its pollers; a completed
    /// result from the store. False when fal should answer it (status stream, cancel, a result not stored).
    /// </summary>
    private async Task<bool> TryServeOwnAsync(HttpContext context, FalProxyTarget target, string requestId)
    {
        var cancellationToken = context.RequestAborted;
        var owner = context.User.Owner();
        var record = target.Operation == FalProxyOperation.Result ? await generations.FindAsync(owner, requestId, cancellationToken) : null;
        if (record is null && (target.Operation == FalProxyOperation.Result || !await generations.IsOwnedByAsync(owner, requestId, cancellationToken)))
        {
            await WriteFalJsonAsync(context, StatusCodes.Status404NotFound, new JsonObject { ["detail"] = $"Request {requestId} not found" });
            return true;
        }

        if (target.Operation == FalProxyOperation.Status)
        {
            await statuses.AnswerAsync(context, target);
            return true;
        }

        if (record is null)
        {
            return false;
        }

        var snapshot = await generations.ObserveAsync(record, logs: false, cancellationToken);
        if (snapshot.Record.Status != GenerationStatus.Completed
            || await generations.GetResultAsync(snapshot.Record, cancellationToken) is not { } stored)
        {
            return false;
        }

        context.Response.Headers["x-fal-request-id"] = requestId;
        await new ResultJson(stored, generations.PartsOf(snapshot.Record, context.Request)).ExecuteAsync(context);
        return true;
    }

    private async Task<Forwarded> ForwardAsync(HttpContext context, FalProxyTarget target, ImageRequest? submitted)
    {
        var webhook = target.Operation == FalProxyOperation.Submit && submitter.WebhookUrl is { } url
            ? new[] { KeyValuePair.Create("fal_webhook", url) }
            : null;
        // Queue submits carry the gateway's storage preferences, whatever the caller sent; a synchronous run is not
        // recorded, so nothing would copy its images: fal keeps them as the account says.
        var headers = target.Operation == FalProxyOperation.Submit ? submitHeaders.Value.Headers : null;
        var transformer = new FalProxyTransformer(target, target.Destination(_fal, webhook), _fal.EffectiveKey!, context.User.Owner(), submitted, submitter, logger, headers);
        var error = await forwarder.SendAsync(
            context, target.BaseUrl(_fal), invoker.Invoker, new ForwarderRequestConfig { ActivityTimeout = _proxy.ActivityTimeout }, transformer);
        if (error != ForwarderError.None)
        {
            LogForwardFailed(logger, target.Operation, error, context.GetForwarderErrorFeature()?.Exception?.GetType().Name);
            if (!context.Response.HasStarted)
            {
                // YARP set the status (502, 504…) and no body: say why, in fal's shape like the proxy's other refusals.
                await WriteFalJsonAsync(context, context.Response.StatusCode, new JsonObject
                {
                    ["detail"] = context.Response.StatusCode == StatusCodes.Status504GatewayTimeout
                        ? "fal did not answer in time (FalProxy__ActivityTimeout)."
                        : "The call to fal failed before fal answered (fal unreachable, or the connection broke).",
                });
            }
        }

        return new Forwarded(error, transformer);
    }

    /// <summary>
    /// A queued job fal accepted holds a slot until it ends; a run fal answered has ended and only counts; a refusal,
    /// or a call that never left, gives the units back; silence keeps them (fal may have taken the job).
    /// </summary>
    private static LimitSettlement Settle(FalProxyTarget target, Forwarded outcome) => outcome.Transformer switch
    {
        { RecordedId: { } id } => LimitSettlement.Commit(id),
        { FalSucceeded: true } when target.Operation == FalProxyOperation.Run => LimitSettlement.Commit(null),
        { FalAnswered: true } => LimitSettlement.Release,
        _ when outcome.Error == ForwarderError.Request => LimitSettlement.Release,
        _ => LimitSettlement.Keep,
    };

    /// <summary>The proxy answers in fal's shape (plain JSON), which @fal-ai/client reads into ApiError / ValidationError.</summary>
    private static async Task WriteFalJsonAsync(HttpContext context, int status, JsonNode body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(), Encoding.UTF8, context.RequestAborted);
    }

    private sealed record Forwarded(ForwarderError Error, FalProxyTransformer Transformer);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused a proxied {Method} for {Client}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string client, string method, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Refused an invalid proxied submit to {Model} for {Client}")]
    private static partial void LogInvalidSubmit(ILogger logger, string client, string model);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Forwarding a proxied {Operation} to fal failed: {Error} ({Exception})")]
    private static partial void LogForwardFailed(ILogger logger, FalProxyOperation operation, ForwarderError error, string? exception);
}
