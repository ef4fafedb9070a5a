using System.Security.Claims;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gateway.Clients;
using Gateway.Generations;
using Gateway.Hosting;
using Gateway.Upstream;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Forwarder;

namespace Gateway.Proxy;

/// <summary>
/// <c>GET|POST|PUT /api/fal/proxy</c>: fal's client proxy protocol. The target is parsed and allowlisted,
/// submits are validated like /v1 submits and recorded as the caller's, reads of another client's request
/// answer 404, a completed result comes from the store; everything else streams through YARP unchanged.
/// </summary>
internal static partial class FalProxyEndpoints
{
    public static async Task ProxyToFal(
        HttpContext context,
        ClaimsPrincipal user,
        IHttpForwarder forwarder,
        FalProxyInvoker invoker,
        GenerationService generations,
        ProxySubmitValidator validator,
        ClientLimiter limiter,
        IOptions<FalOptions> falOptions,
        IOptions<FalProxyOptions> proxyOptions,
        ILoggerFactory loggerFactory)
    {
        var logger = loggerFactory.CreateLogger(typeof(FalProxyEndpoints).FullName!);
        var fal = falOptions.Value;
        var client = user.ClientName();
        var cancellationToken = context.RequestAborted;

        var (target, refusal) = FalProxyTargetParser.Parse(
            context.Request.Headers[FalProxyTarget.HeaderName], context.Request.Method, fal, proxyOptions.Value);
        if (target is null)
        {
            LogRefused(logger, client, context.Request.Method, refusal!.Detail);
            await WriteFalJsonAsync(context, refusal.Status, new JsonObject { ["message"] = refusal.Message, ["detail"] = refusal.Detail });
            return;
        }

        ImageRequest? submitted = null;
        LimitLease? lease = null;
        if (target.IsSubmit)
        {
            if (!ProxySubmitValidator.IsJson(context.Request.ContentType))
            {
                LogRefused(logger, client, context.Request.Method, "the submit body is not declared as JSON");
                await WriteFalJsonAsync(context, StatusCodes.Status415UnsupportedMediaType,
                    new JsonObject { ["detail"] = "A submit body must be JSON: send it with Content-Type: application/json." });
                return;
            }

            var (request, errors) = await validator.ReadAsync(context, target.EndpointId == fal.EditModel, cancellationToken);
            if (request is null)
            {
                LogInvalidSubmit(logger, client, target.EndpointId!);
                await WriteFalJsonAsync(context, StatusCodes.Status422UnprocessableEntity, errors!);
                return;
            }

            // Only the validated input goes to fal, re-serialised: nothing the validation did not see can ride along.
            var body = JsonSerializer.SerializeToUtf8Bytes(request.ToFalInput(), FalInputJsonContext.Default.FalImageInput);
            context.Request.Body = new MemoryStream(body);
            context.Request.ContentLength = body.Length;
            context.Request.ContentType = "application/json";
            submitted = request;

            // The same per-client limits as /v1 submits, checked before anything reaches fal.
            var decision = await limiter.TryAcquireAsync(client, request.NumImages ?? 1);
            decision.WriteHeaders(context.Response.Headers);
            if (decision.Lease is null)
            {
                context.Response.Headers.RetryAfter = decision.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
                await WriteFalJsonAsync(context, StatusCodes.Status429TooManyRequests, new JsonObject { ["detail"] = decision.RefusalDetail() });
                return;
            }

            lease = decision.Lease;
        }
        else if (target.RequestId is { } requestId)
        {
            if (await generations.FindAsync(client, requestId, cancellationToken) is not { } record)
            {
                await WriteFalJsonAsync(context, StatusCodes.Status404NotFound, new JsonObject { ["detail"] = $"Request {requestId} not found" });
                return;
            }

            if (target.Operation == FalProxyOperation.Result)
            {
                var snapshot = await generations.ObserveAsync(record, logs: false, cancellationToken);
                if (snapshot.Record.Status == GenerationStatus.Completed
                    && await generations.GetResultAsync(requestId, cancellationToken) is { } stored)
                {
                    context.Response.Headers["x-fal-request-id"] = requestId;
                    await new ResultJson(stored, (i, ct) => generations.GetBlobAsync(requestId, i, ct)).ExecuteAsync(context);
                    return;
                }
            }
        }

        var webhook = target.Operation == FalProxyOperation.Submit && generations.WebhookUrl is { } url
            ? new[] { KeyValuePair.Create("fal_webhook", url) }
            : null;
        var destination = target.Destination(fal, webhook);
        var transformer = new FalProxyTransformer(target, destination, fal.EffectiveKey!, client, submitted, generations, logger);
        var error = await forwarder.SendAsync(
            context, target.BaseUrl(fal), invoker.Invoker,
            new ForwarderRequestConfig { ActivityTimeout = proxyOptions.Value.ActivityTimeout }, transformer);
        if (error != ForwarderError.None)
        {
            LogForwardFailed(logger, target.Operation, error, context.GetForwarderErrorFeature()?.Exception?.GetType().Name);
        }

        if (lease is not null)
        {
            if (transformer.RecordedId is { } id)
            {
                await lease.CommitAsync(id);
            }
            else if (transformer.FalAnswered || error == ForwarderError.Request)
            {
                await lease.ReleaseAsync(); // fal refused it, or it never left: nothing is billed
            }
            // Otherwise fal may have taken the job without answering: its units stay spent.
        }
    }

    /// <summary>The proxy answers in fal's shape (plain JSON), which @fal-ai/client reads into ApiError / ValidationError.</summary>
    private static async Task WriteFalJsonAsync(HttpContext context, int status, JsonNode body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(), Encoding.UTF8, context.RequestAborted);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused a proxied {Method} for {Client}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string client, string method, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Refused an invalid proxied submit to {Model} for {Client}")]
    private static partial void LogInvalidSubmit(ILogger logger, string client, string model);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Forwarding a proxied {Operation} to fal failed: {Error} ({Exception})")]
    private static partial void LogForwardFailed(ILogger logger, FalProxyOperation operation, ForwarderError error, string? exception);
}
