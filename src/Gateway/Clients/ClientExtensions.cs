using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Gateway.Clients;

internal static class ClientExtensions
{
    /// <summary>
    /// The default scheme: a policy scheme that picks, per request, the handler for the credential presented.
    /// Other features (signed links) put their own choice in front of it.
    /// </summary>
    public const string CallerScheme = "Caller";

    public static IHostApplicationBuilder AddClientAuthentication(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<ClientsOptions>()
            .Configure<IConfiguration>((options, configuration) =>
                configuration.GetSection(ClientsOptions.SectionName).Bind(options.Clients))
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<ClientsOptions>, ClientsOptionsValidator>();
        builder.Services.AddOptions<DevelopmentClientOptions>().BindConfiguration(DevelopmentClientOptions.SectionName);
        builder.Services.AddSingleton<ClientRegistry>();

        builder.Services.AddAuthentication(CallerScheme)
            .AddPolicyScheme(CallerScheme, null, options => options.ForwardDefaultSelector = _ => ClientKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ClientKeyAuthenticationHandler>(ClientKeyAuthenticationHandler.SchemeName, null);
        builder.Services.AddAuthorization();
        return builder;
    }

    /// <summary>
    /// Puts <paramref name="select"/> in front of the caller scheme's choice: where it answers a scheme, that
    /// scheme authenticates (and challenges) the request; where it answers null, the choice goes on as before.
    /// </summary>
    public static IServiceCollection SelectCallerSchemeFirst(this IServiceCollection services, Func<HttpContext, string?> select) =>
        services.PostConfigure<PolicySchemeOptions>(CallerScheme, options =>
        {
            var next = options.ForwardDefaultSelector;
            options.ForwardDefaultSelector = context => select(context) ?? next?.Invoke(context);
        });
}
