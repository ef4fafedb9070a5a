using Gateway.Hosting;

namespace Gateway.Proxy;

/// <summary>
/// <c>GET|POST|PUT /api/fal/proxy</c>: fal's client proxy protocol. The target is parsed and allowlisted,
/// submits are validated like /v1 submits and recorded as the caller's, reads of another client's request
/// answer 404, a completed result comes from the store; everything else streams through YARP unchanged.
/// </summary>
internal static class FalProxyEndpoints
{
    public static Task ProxyGetToFal(HttpContext context, FalProxyHandler handler) => handler.HandleAsync(context);

    public static Task ProxyPostToFal(HttpContext context, FalProxyHandler handler) => handler.HandleAsync(context);

    public static Task ProxyPutToFal(HttpContext context, FalProxyHandler handler) => handler.HandleAsync(context);

    /// <summary>What every proxied call can answer: fal's own answers passed on, and the gateway's refusals in fal's shape.</summary>
    public static RouteHandlerBuilder DescribesProxy(this RouteHandlerBuilder builder, string operations) => builder
        .WithSummary($"fal's client proxy protocol: {operations}")
        .WithDescription("Forwards the call named by the x-fal-target-url header to fal with the gateway's FAL key, if it is one the gateway allows: "
            + "submits to the configured models (validated as /v1 submits), status, status stream, result and cancel of the caller's own requests, "
            + "and storage uploads. Answers as fal does (status, headers and JSON passed on); the gateway's own refusals are JSON in fal's shape, "
            + "{\"message\":…,\"detail\":…} or {\"detail\":…}, which @fal-ai/client reads into its errors.")
        .WithRequestHeader(FalProxyTarget.HeaderName, "The fal URL the call is for (what @fal-ai/client sends with proxyUrl).", required: true,
            example: "https://queue.fal.run/microsoft/mai-image-2.5")
        .Produces<FalJson>(StatusCodes.Status200OK, "application/json", "text/event-stream")
        .DescribesResponse(StatusCodes.Status200OK, "fal's answer (a status stream is text/event-stream), or a completed result from the gateway's store.")
        .ProducesFalJson(StatusCodes.Status202Accepted, "fal's answer: a status while the request is pending, or a cancel fal accepted.")
        .ProducesFalJson(StatusCodes.Status400BadRequest,
            "The target is missing or not one the gateway allows ({\"message\":\"Invalid request\",\"detail\":…}), or fal's own 400.")
        .ProducesFalJson(StatusCodes.Status404NotFound, "The request is not the caller's ({\"detail\":…}), or fal's own 404.")
        .ProducesFalJson(StatusCodes.Status415UnsupportedMediaType, "A submit whose body is not declared as JSON ({\"detail\":…}).")
        .ProducesFalJson(StatusCodes.Status422UnprocessableEntity,
            "A submit the gateway's validation refused, in fal's shape ({\"detail\":[{loc,msg,type}]}), or fal's own 422.")
        .ProducesFalJson(StatusCodes.Status429TooManyRequests, "A client limit refused the submit ({\"detail\":…}), or fal's own 429.")
        .ProducesFalJson(StatusCodes.Status502BadGateway, "The call to fal failed before fal answered ({\"detail\":…}), or fal's own 502.")
        .ProducesFalJson(StatusCodes.Status504GatewayTimeout, "fal did not answer within FalProxy__ActivityTimeout ({\"detail\":…}), or fal's own 504.")
        .ProducesProblemFor(StatusCodes.Status413PayloadTooLarge, "The body is larger than the gateway accepts (Gateway__MaxRequestBodyBytes).")
        .ProducesProblemFor(StatusCodes.Status503ServiceUnavailable, "The gateway's store (Redis) is briefly unreachable.")
        .ProducesDefault<FalJson>("Any other status: fal's own answer, passed on.", "application/json");

    /// <summary>A JSON answer in fal's shape with <paramref name="status"/>, and when it is given.</summary>
    private static RouteHandlerBuilder ProducesFalJson(this RouteHandlerBuilder builder, int status, string description) => builder
        .Produces<FalJson>(status, "application/json")
        .DescribesResponse(status, description);
}

/// <summary>A JSON object as fal (or the gateway, in fal's shape) answers it.</summary>
[ApiExtensible]
public sealed record FalJson;
