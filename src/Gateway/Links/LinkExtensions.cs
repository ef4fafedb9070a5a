using Gateway.Clients;
using Gateway.Hosting;
using Microsoft.AspNetCore.Authentication;

namespace Gateway.Links;

internal static class LinkExtensions
{
    /// <summary>Signed links: tickets that let a page open a generation's stream (or images) without headers.</summary>
    public static IHostApplicationBuilder AddLinks(this IHostApplicationBuilder builder)
    {
        builder.Services.AddValidatedOptions<LinkOptions>(LinkOptions.SectionName);
        builder.Services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<LinkOptions>, LinkOptionsValidator>();
        builder.Services.AddSingleton<LinkTickets>();
        builder.Services.AddHostedService<UnsignedLinksAnnouncement>();
        builder.Services.AddSecretQueryParameter(LinkTickets.QueryName);
        builder.Services.AddAuthentication()
            .AddScheme<AuthenticationSchemeOptions, LinkTicketAuthenticationHandler>(LinkTicketAuthenticationHandler.SchemeName, null);
        builder.Services.WithoutDataProtectionStartup();
        builder.Services.SelectCallerSchemeFirst(LinkTicketAuthenticationHandler.Select);
        return builder;
    }

    /// <summary>
    /// This endpoint serves <paramref name="resource"/> of the generation named by its <c>{id}</c> route value, and a
    /// ticket issued for that scope authenticates a request as the scope's owner.
    /// </summary>
    public static RouteHandlerBuilder AcceptsLinkTicket(this RouteHandlerBuilder builder, string resource) =>
        builder.WithMetadata(new LinkTicketMetadata(resource));

    private sealed class UnsignedLinksAnnouncement(LinkTickets tickets, ILogger<UnsignedLinksAnnouncement> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            if (!tickets.Enabled)
            {
                logger.LogWarning("Gateway__LinkSigningKey is not set: links (events, images) are plain routes that need the caller's "
                    + "key or token, so a browser's EventSource cannot open them. Set it to base64 of 32 random bytes, the same on every replica.");
            }

            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
