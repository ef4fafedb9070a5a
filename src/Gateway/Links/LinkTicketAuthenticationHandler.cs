using System.Text.Encodings.Web;
using Gateway.Clients;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Gateway.Links;

/// <summary>
/// Authenticates a request by the <c>ticket</c> of a signed link, on the endpoints that accept one for the resource
/// they serve (<see cref="LinkExtensions.AcceptsLinkTicket"/>): the caller becomes the ticket's owner, exactly as if
/// that owner had sent their key or token. Anywhere else a ticket grants nothing.
/// </summary>
internal sealed class LinkTicketAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory loggerFactory,
    UrlEncoder encoder,
    LinkTickets tickets)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, loggerFactory, encoder)
{
    public const string SchemeName = "LinkTicket";

    /// <summary>
    /// This scheme's requests: a ticket on an endpoint that accepts one, and no credential header (a caller that
    /// sends its key or token is authenticated by it, as on any route).
    /// </summary>
    public static string? Select(HttpContext context) =>
        context.GetEndpoint()?.Metadata.GetMetadata<LinkTicketMetadata>() is not null
        && context.Request.Query.ContainsKey(LinkTickets.QueryName)
        && !context.Request.Headers.ContainsKey("Authorization")
        && !context.Request.Headers.ContainsKey(ClientKeyAuthenticationHandler.ApiKeyHeader)
            ? SchemeName
            : null;

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var resource = Context.GetEndpoint()?.Metadata.GetMetadata<LinkTicketMetadata>()?.Resource;
        var presented = Request.Query[LinkTickets.QueryName];
        if (resource is null || presented.Count == 0)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        if (presented.Count != 1 || Request.RouteValues["id"] is not string id
            || tickets.Validate(presented.ToString(), id, resource) is not { } scope)
        {
            return Task.FromResult(AuthenticateResult.Fail("The link's ticket is not valid here, or has expired."));
        }

        var principal = CallerClaims.Create(new Owner(scope.Client, scope.User), SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName)));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        CallerChallenge.WriteAsync(Context, "The link has expired or is not valid",
            $"A signed link opens one generation's {Context.GetEndpoint()?.Metadata.GetMetadata<LinkTicketMetadata>()?.Resource} for "
            + $"{LinkTickets.Lifetime.TotalMinutes:0} minutes after it was issued. Read the generation again for a fresh link, or send your credentials.");
}

/// <summary>Endpoint metadata: this endpoint serves <see cref="Resource"/> of the generation in its <c>{id}</c> route value, and accepts a link ticket for it.</summary>
internal sealed record LinkTicketMetadata(string Resource);
