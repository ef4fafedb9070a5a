using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace Gateway.Tests.Infrastructure;

/// <summary>
/// The gateway on a real Kestrel socket on 127.0.0.1, configured only through settings, as in production. Every answer
/// it sends is checked against docs/openapi.json: into <paramref name="contract"/> when given (its owner fails the test),
/// else into its own findings, which fail the test when the gateway is disposed.
/// </summary>
public sealed class GatewayApplication(
    IReadOnlyDictionary<string, string?> settings,
    CapturingSink? logs = null,
    string environment = "Testing",
    Action<IServiceCollection>? services = null,
    ContractViolations? contract = null)
    : WebApplicationFactory<Gateway.Hosting.GatewayOptions> // any public type of the gateway assembly names its entry point
{
    private readonly bool _ownsContract = contract is null;

    public ContractViolations Contract { get; } = contract ?? new ContractViolations();

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (_ownsContract)
        {
            Contract.ThrowIfAny();
        }
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment(environment);
        builder.ConfigureServices(s => s.AddSingleton<IStartupFilter>(new ContractCheckStartupFilter(Contract)));
        foreach (var (key, value) in settings)
        {
            // UseSetting lands before Program reads configuration, unlike ConfigureAppConfiguration.
            builder.UseSetting(key, value);
        }

        if (logs is not null)
        {
            // Serilog's ReadFrom.Services picks up sinks registered in the container.
            builder.ConfigureServices(s => s.AddSingleton<Serilog.Core.ILogEventSink>(logs));
        }

        if (services is not null)
        {
            // e.g. one FakeTimeProvider shared by every replica, so windows roll over when the test moves it.
            builder.ConfigureTestServices(services);
        }
    }

    public Uri Start(int port = 0)
    {
        UseKestrel(options => options.Listen(System.Net.IPAddress.Loopback, port));
        StartServer();
        var addresses = Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!;
        return new Uri(addresses.Addresses.First());
    }
}
