using Gateway.Clients;
using Gateway.Files;
using Gateway.Generations;
using Gateway.Hosting;
using Gateway.Images;
using Gateway.Links;
using Gateway.Playground;
using Gateway.Proxy;
using Gateway.Storage;
using Gateway.Upstream;
using Gateway.Webhooks;

// A bad setting read anywhere while the gateway is built or started stops it with one line naming the setting (exit 1).
return GatewayRunner.Run(args,
    builder =>
    {
        builder.AddGatewayHosting();
        builder.AddClientAuthentication();
        builder.AddLinks();
        builder.AddClientLimits();
        builder.AddStorage();
        builder.AddFalUpstream();
        builder.AddGenerations();
        builder.AddImages();
        builder.AddFalWebhooks();
        builder.AddFalProxy();
        builder.AddFiles();
    },
    app =>
    {
        app.UseGatewayHosting();
        app.UseClientAuthentication();
        app.UseIdempotency();

        app.MapGatewayHosting();
        app.MapPlayground();
        app.MapGenerations().AllowBrowsers();
        app.MapImages().AllowBrowsers();
        app.MapFalWebhooks();
        app.MapFiles().AllowBrowsers();
        app.MapFalProxy().AllowBrowsers();
        app.MapUsage().AllowBrowsers();
    });

/// <summary>The entry point, visible to the tests' WebApplicationFactory.</summary>
public partial class Program;
