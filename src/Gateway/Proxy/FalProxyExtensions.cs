using System.Diagnostics;
using System.Net;
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
        builder.Services.AddScoped<FalProxyHandler>();
        return builder;
    }

    public static RouteGroupBuilder MapFalProxy(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Route).RequireAuthorization().WithTags("fal client proxy");
        group.MapMethods("", [HttpMethods.Get, HttpMethods.Post, HttpMethods.Put], FalProxyEndpoints.ProxyToFal)
            .WithName(nameof(FalProxyEndpoints.ProxyToFal))
            .WithSummary("fal's client proxy protocol, for @fal-ai/client with proxyUrl")
            .WithDescription("Forwards the call named by the x-fal-target-url header to fal with the gateway's FAL key, "
                + "if it is one the gateway allows: submits to the configured models (validated as /v1 submits), "
                + "status, status stream, result and cancel of the caller's own requests, and storage uploads. "
                + "Answers as fal does; refusals are 400 {\"message\":\"Invalid request\",\"detail\":…}.");
        return group;
    }
}
