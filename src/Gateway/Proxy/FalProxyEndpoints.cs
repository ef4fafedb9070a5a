namespace Gateway.Proxy;

/// <summary>
/// <c>GET|POST|PUT /api/fal/proxy</c>: fal's client proxy protocol. The target is parsed and allowlisted,
/// submits are validated like /v1 submits and recorded as the caller's, reads of another client's request
/// answer 404, a completed result comes from the store; everything else streams through YARP unchanged.
/// </summary>
internal static class FalProxyEndpoints
{
    public static Task ProxyToFal(HttpContext context, FalProxyHandler handler) => handler.HandleAsync(context);
}
