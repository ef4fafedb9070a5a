using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Gateway.Clients;

internal static class ClientExtensions
{
    public static IHostApplicationBuilder AddClientAuthentication(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<ClientsOptions>()
            .Configure<IConfiguration>((options, configuration) =>
                configuration.GetSection(ClientsOptions.SectionName).Bind(options.Clients))
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<ClientsOptions>, ClientsOptionsValidator>();
        builder.Services.AddOptions<DevelopmentClientOptions>().BindConfiguration(DevelopmentClientOptions.SectionName);
        builder.Services.AddSingleton<ClientRegistry>();

        builder.Services.AddAuthentication(ClientKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ClientKeyAuthenticationHandler>(ClientKeyAuthenticationHandler.SchemeName, null);
        builder.Services.AddAuthorization();
        return builder;
    }
}
