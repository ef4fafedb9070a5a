using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Gateway.Clients;

internal static class ClientExtensions
{
    public static IHostApplicationBuilder AddClientAuthentication(this IHostApplicationBuilder builder)
    {
        // Read through IOptionsMonitor: the configuration's change token (key files in Gateway__SecretsPath) rebinds
        // the clients, and ClientsConfiguration keeps the last good ones when a change does not validate.
        builder.Services.AddOptions<ClientsOptions>().ValidateOnStart();
        builder.Services.AddSingleton<ClientsOptionsValidator>();
        builder.Services.AddSingleton<IValidateOptions<ClientsOptions>>(services => services.GetRequiredService<ClientsOptionsValidator>());
        builder.Services.AddSingleton<IConfigureOptions<ClientsOptions>, ClientsConfiguration>();
        builder.Services.AddSingleton<IOptionsChangeTokenSource<ClientsOptions>>(
            new ConfigurationChangeTokenSource<ClientsOptions>(builder.Configuration.GetSection(ClientsOptions.SectionName)));
        builder.Services.AddOptions<DevelopmentClientOptions>().BindConfiguration(DevelopmentClientOptions.SectionName);
        builder.Services.AddSingleton<ClientRegistry>();

        builder.Services.AddAuthentication(ClientKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ClientKeyAuthenticationHandler>(ClientKeyAuthenticationHandler.SchemeName, null);
        builder.Services.AddAuthorization();
        return builder;
    }
}
