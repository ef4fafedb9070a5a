using System.Diagnostics;
using System.Net;
using Gateway.Clients;
using Gateway.Hosting;
using Yarp.ReverseProxy.Forwarder;

namespace Gateway.Proxy;

/// <summary>
/// The one HTTP client of the proxy route, as YARP's docs set it up: no proxy, no redirects, no cookies, no Polly,
/// and no logging handler (YARP itself logs the destination URL and status, never a header: the FAL key is one).
/// </summary>
internal sealed class FalProxyInvoker : IDisposable
{
    public HttpMessageInvoker Invoker { get; } = new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        UseCookies = false,
        // fal's answers reach the caller decompressed, without Content-Encoding, as through fal's own proxy.
        AutomaticDecompression = DecompressionMethods.All,
        EnableMultipleHttp2Connections = true,
        ConnectTimeout = TimeSpan.FromSeconds(15),
        ActivityHeadersPropagator = new ReverseProxyPropagator(DistributedContextPropagator.Current),
    });

    public void Dispose() => Invoker.Dispose();
}

internal static class FalProxyExtensions
{
    public const string Route = "/api/fal/proxy";

    public static IHostApplicationBuilder AddFalProxy(this IHostApplicationBuilder builder)
    {
        builder.Services.AddValidatedOptions<FalProxyOptions>(FalProxyOptions.SectionName);
        builder.Services.AddHttpForwarder();
        builder.Services.AddSingleton<FalProxyInvoker>();
        builder.Services.AddScoped<ProxySubmitValidator>();
        builder.Services.AddSingleton<ProxyStatusCoalescer>();
        builder.Services.AddSingleton<FalProxyHandler>();
        return builder;
    }

    public static RouteGroupBuilder MapFalProxy(this IEndpointRouteBuilder app)
    {
        // No endpoint validation: the routes bind no input (the handler validates a submit's body itself, in fal's shape),
        // and the framework's filter otherwise ran on every poll for nothing.
        var group = app.MapGroup(Route).RequireAuthorization().DisableValidation().WithTags("fal client proxy");
        // One route per method, so each has its own operation id (a generated client names its functions by them).
        group.MapGet("", FalProxyEndpoints.ProxyGetToFal)
            .WithName(nameof(FalProxyEndpoints.ProxyGetToFal))
            .DescribesProxy("status, status stream and result");
        group.MapPost("", FalProxyEndpoints.ProxyPostToFal)
            .WithName(nameof(FalProxyEndpoints.ProxyPostToFal))
            .DescribesProxy("submits and storage uploads")
            // A submit passes the client limits before fal is asked: whatever answers it then carries their headers.
            .WithRateLimitHeaders(StatusCodes.Status200OK, StatusCodes.Status202Accepted, StatusCodes.Status400BadRequest, StatusCodes.Status404NotFound,
                StatusCodes.Status422UnprocessableEntity, StatusCodes.Status429TooManyRequests, StatusCodes.Status502BadGateway,
                StatusCodes.Status504GatewayTimeout, ResponseHeaderMetadata.AnyOtherStatus);
        group.MapPut("", FalProxyEndpoints.ProxyPutToFal)
            .WithName(nameof(FalProxyEndpoints.ProxyPutToFal))
            .DescribesProxy("cancel");
        return group;
    }
}
