using System.Diagnostics;
using Gateway.Hosting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;
using Serilog;

namespace Gateway.Clients;

internal static class ClientExtensions
{
    /// <summary>
    /// The default scheme: the client-key handler, which hands the request to another scheme when the credential
    /// presented is not a key (a bearer value shaped like a JWT is an access token; other features, signed links, put
    /// their own choice in front). A client key, what services and pollers present, so takes one handler per request,
    /// not a policy scheme's two (issue 13: the forwarding cost a few percent of a status poll).
    /// </summary>
    public const string CallerScheme = ClientKeyAuthenticationHandler.SchemeName;

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
        builder.Services.AddValidatedOptions<OidcOptions>(OidcOptions.SectionName);
        builder.Services.AddSingleton<IValidateOptions<OidcOptions>, OidcOptionsValidator>();
        builder.Services.AddSingleton<ClientRegistry>();

        builder.Services.AddAuthentication(CallerScheme)
            .AddScheme<AuthenticationSchemeOptions, ClientKeyAuthenticationHandler>(ClientKeyAuthenticationHandler.SchemeName, null)
            .AddAccessTokens();
        builder.Services.WithoutDataProtectionStartup();
        // A null choice keeps the request here (AuthenticationHandler forwards only to another scheme's name).
        builder.Services.AddOptions<AuthenticationSchemeOptions>(CallerScheme).Configure<IOptions<OidcOptions>>((scheme, oidc) =>
        {
            var tokens = oidc.Value.Enabled;
            scheme.ForwardDefaultSelector = context => tokens && AccessTokenAuthentication.PresentsToken(context.Request)
                ? AccessTokenAuthentication.SchemeName
                : null;
        });

        // Every route needs a caller that is a client: a valid token of an app mapped to no client is signed in, yet forbidden.
        builder.Services.AddAuthorizationBuilder().SetDefaultPolicy(new AuthorizationPolicyBuilder()
            .AddRequirements(new CallerIsClientRequirement())
            .Build());
        builder.Services.WithStatelessAuthorizationServices();
        return builder;
    }

    /// <summary>
    /// The framework registers its authorization services as transient, so that an application's handlers may use
    /// scoped services; every request then built the policy evaluator, the authorization service, its handler provider,
    /// evaluator and context factory and the pass-through handler (issue 13: about a tenth of a status poll's bytes).
    /// The gateway's policy has no handler of its own and these keep no state, so each is built once. A scoped handler
    /// added later would fail loudly at resolution (scope validation), not share state.
    /// </summary>
    private static void WithStatelessAuthorizationServices(this IServiceCollection services)
    {
        Type[] stateless =
        [
            typeof(IAuthorizationService), typeof(IAuthorizationHandlerProvider), typeof(IAuthorizationEvaluator),
            typeof(IAuthorizationHandlerContextFactory), typeof(Microsoft.AspNetCore.Authorization.Policy.IPolicyEvaluator),
            typeof(IAuthorizationMiddlewareResultHandler),
        ];
        for (var i = 0; i < services.Count; i++)
        {
            var descriptor = services[i];
            var passThrough = descriptor.ServiceType == typeof(IAuthorizationHandler)
                && descriptor.ImplementationType == typeof(Microsoft.AspNetCore.Authorization.Infrastructure.PassThroughAuthorizationHandler);
            if (descriptor is { Lifetime: ServiceLifetime.Transient, ImplementationType: { } implementation, IsKeyedService: false }
                && (passThrough || stateless.Contains(descriptor.ServiceType)))
            {
                services[i] = ServiceDescriptor.Singleton(descriptor.ServiceType, implementation);
            }
        }
    }

    /// <summary>Authentication, then the caller (client, user) on the request-log line and the trace, then authorization.</summary>
    public static WebApplication UseClientAuthentication(this WebApplication app)
    {
        app.UseAuthentication();
        var diagnostics = app.Services.GetService<IDiagnosticContext>(); // a singleton: looked up once, not per request
        app.Use((context, next) =>
        {
            TagCaller(context, diagnostics);
            return next(context);
        });
        app.UseAuthorization();
        return app;
    }

    /// <summary>
    /// Puts <paramref name="select"/> in front of the caller scheme's choice: where it answers a scheme, that
    /// scheme authenticates (and challenges) the request; where it answers null, the choice goes on as before.
    /// </summary>
    public static IServiceCollection SelectCallerSchemeFirst(this IServiceCollection services, Func<HttpContext, string?> select) =>
        services.PostConfigure<AuthenticationSchemeOptions>(CallerScheme, options =>
        {
            var next = options.ForwardDefaultSelector;
            options.ForwardDefaultSelector = context => select(context) ?? next?.Invoke(context);
        });

    /// <summary>Client and user as properties of the request-log line and tags of the request's span; never as a metric label.</summary>
    private static void TagCaller(HttpContext context, IDiagnosticContext? diagnostics)
    {
        if (context.User.Identity is not { IsAuthenticated: true } identity)
        {
            return;
        }

        var activity = Activity.Current;
        if (identity.Name is { } client)
        {
            diagnostics?.Set("Client", client);
            activity?.SetTag("gateway.client", client);
        }

        if (context.User.UserId() is { } user)
        {
            diagnostics?.Set("User", user);
            activity?.SetTag("enduser.id", user);
        }
    }

    /// <summary>
    /// The default policy's one requirement, its own handler: the caller is signed in and is a client (has a name). It
    /// stands for the framework's pair (an authenticated user, a name claim), which ran two requirement handlers per
    /// request and enumerated the caller's claims (issue 13). Every scheme signs in one identity (CallerClaims), named
    /// by ClaimTypes.Name, so the two say the same.
    /// </summary>
    private sealed class CallerIsClientRequirement : AuthorizationHandler<CallerIsClientRequirement>, IAuthorizationRequirement
    {
        protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, CallerIsClientRequirement requirement)
        {
            if (context.User.Identity is { IsAuthenticated: true, Name: not null })
            {
                context.Succeed(requirement);
            }

            return Task.CompletedTask;
        }
    }
}
