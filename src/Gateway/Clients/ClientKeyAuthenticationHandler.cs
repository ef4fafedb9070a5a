using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Gateway.Clients;

/// <summary>Authenticates internal clients by their key: <c>Authorization: Bearer &lt;key&gt;</c>, <c>X-Api-Key: &lt;key&gt;</c> or <c>Authorization: Key &lt;key&gt;</c>.</summary>
internal sealed class ClientKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory loggerFactory,
    UrlEncoder encoder,
    ClientRegistry registry)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, loggerFactory, encoder)
{
    public const string SchemeName = "ClientKey";
    public const string ApiKeyHeader = "X-Api-Key";

    /// <summary>This scheme raises no events; the base class would build a new object (and its task) per request for them.</summary>
    private static readonly Task<object> NoEvents = Task.FromResult(new object());

    protected override Task<object> CreateEventsAsync() => NoEvents;

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (PresentedKey(Request) is not { } key)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        if (registry.FindClient(key) is not { } client)
        {
            return Task.FromResult(AuthenticateResult.Fail("Unknown client key."));
        }

        return Task.FromResult(AuthenticateResult.Success(registry.TicketFor(client)));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        CallerChallenge.WriteAsync(Context, "A valid client key is required", PresentedKey(Request) is null
            ? "Send your client key as Authorization: Bearer <key> or X-Api-Key: <key>."
            : "The client key is not known to this gateway.");

    /// <summary>The key the caller presented, if any; these headers are consumed here and never forwarded.</summary>
    internal static string? PresentedKey(HttpRequest request)
    {
        if (request.Headers.TryGetValue(ApiKeyHeader, out var apiKey) && !string.IsNullOrWhiteSpace(apiKey))
        {
            return apiKey.ToString().Trim();
        }

        // "Key <client key>" is what @fal-ai/client sends when a frontend passes its client key as `credentials`.
        var authorization = request.Headers.Authorization.ToString();
        foreach (var scheme in (ReadOnlySpan<string>)["Bearer ", "Key "])
        {
            if (authorization.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) && authorization.Length > scheme.Length)
            {
                return authorization[scheme.Length..].Trim();
            }
        }

        return null;
    }
}
