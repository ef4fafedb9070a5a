using System.Security.Claims;
using Gateway.Hosting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Gateway.Clients;

/// <summary>
/// People signed in with the company's identity provider: their browser frontend sends an OIDC access token as
/// <c>Authorization: Bearer</c>. ASP.NET Core's JWT bearer handler validates it (issuer and signing keys from the
/// authority's discovery document, refreshed when an unknown <c>kid</c> arrives; audience; lifetime); here the token
/// becomes a caller: the client its app (<c>azp</c>/<c>appid</c>) is mapped to, and its user (<c>oid</c>, else <c>sub</c>).
/// </summary>
internal static class AccessTokenAuthentication
{
    public const string SchemeName = "AccessToken";

    /// <summary>The token's app, kept on a caller whose app is no client (for the 403's detail and the logs).</summary>
    public const string AppClaimType = "gateway:app";

    public static AuthenticationBuilder AddAccessTokens(this AuthenticationBuilder authentication)
    {
        // A token signed with a key the gateway has not seen (the issuer rotated) makes the configuration manager fetch
        // the keys again. By default (IdentityModel 8) that fetch runs in the background and this token is refused;
        // blocking, the same request waits for the new keys and is accepted. The fetch stays throttled (once per
        // JwtBearerOptions.RefreshInterval, 5 minutes), so tokens with made-up kids cannot hammer the issuer.
        AppContext.SetSwitch("Switch.Microsoft.IdentityModel.UpdateConfigAsBlocking", true);
        authentication.AddJwtBearer(SchemeName, _ => { });
        authentication.Services.AddOptions<JwtBearerOptions>(SchemeName).Configure<IOptions<OidcOptions>>((jwt, options) =>
        {
            var oidc = options.Value;
            if (!oidc.Enabled)
            {
                return; // never selected: a bearer value is then always a client key
            }

            jwt.Authority = oidc.Authority;
            jwt.Audience = oidc.Audience;
            jwt.RequireHttpsMetadata = oidc.RequireHttpsMetadata;
            jwt.MapInboundClaims = false; // claims keep the token's names: azp, appid, oid, sub
            jwt.SaveToken = false;
            jwt.TokenValidationParameters.ClockSkew = TimeSpan.FromMinutes(1);
            jwt.Events = new JwtBearerEvents
            {
                OnTokenValidated = TokenValidated,
                OnChallenge = Challenge,
                OnForbidden = Forbidden,
            };
        });
        return authentication;
    }

    /// <summary>Whether the request's bearer value is shaped like a JWT (three base64url parts, a JSON header): then it is a token, not a key.</summary>
    public static bool PresentsToken(HttpRequest request)
    {
        var authorization = request.Headers.Authorization.ToString();
        const string Bearer = "Bearer ";
        if (!authorization.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var value = authorization.AsSpan(Bearer.Length).Trim();
        var parts = 0;
        foreach (var part in value.Split('.'))
        {
            var segment = value[part];
            if (++parts > 3 || (parts < 3 && segment.IsEmpty) || segment.ContainsAnyExcept(Base64UrlCharacters))
            {
                return false;
            }
        }

        return parts == 3 && value.StartsWith("eyJ", StringComparison.Ordinal); // base64url of '{"'
    }

    private static readonly System.Buffers.SearchValues<char> Base64UrlCharacters =
        System.Buffers.SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");

    private static Task TokenValidated(TokenValidatedContext context)
    {
        var services = context.HttpContext.RequestServices;
        var oidc = services.GetRequiredService<IOptions<OidcOptions>>().Value;
        var token = context.Principal!;
        var userClaim = string.IsNullOrWhiteSpace(oidc.UserClaim) ? null : oidc.UserClaim;
        var user = userClaim is null ? token.FindFirst("oid")?.Value ?? token.FindFirst("sub")?.Value : token.FindFirst(userClaim)?.Value;
        if (string.IsNullOrEmpty(user))
        {
            context.Fail($"The token has no '{userClaim ?? "oid"}'{(userClaim is null ? " or 'sub'" : "")} claim to name its user.");
            return Task.CompletedTask;
        }

        var app = token.FindFirst("azp")?.Value ?? token.FindFirst("appid")?.Value ?? "";
        context.Principal = services.GetRequiredService<ClientRegistry>().FindClientByApp(app) is { } client
            ? CallerClaims.Create(new Owner(client, user), SchemeName)
            // Signed in, but for an app that is no client: authorization forbids it (403), which says why.
            : new ClaimsPrincipal(new ClaimsIdentity([new Claim(AppClaimType, app), new Claim(CallerClaims.UserClaimType, user)], SchemeName));
        return Task.CompletedTask;
    }

    /// <summary>401 with the standard challenge (<c>Bearer error="invalid_token"</c>, RFC 6750) and a problem body.</summary>
    private static async Task Challenge(JwtBearerChallengeContext context)
    {
        context.HandleResponse();
        var description = string.IsNullOrEmpty(context.ErrorDescription) ? context.AuthenticateFailure?.Message : context.ErrorDescription;
        await CallerChallenge.WriteAsync(context.HttpContext, "The access token is not valid",
            "The token must be signed by the identity provider, current, and issued for this gateway's audience"
                + (string.IsNullOrEmpty(description) ? "." : $": {description}"),
            "error=\"invalid_token\""
                + (string.IsNullOrEmpty(context.ErrorDescription) ? "" : $", error_description=\"{context.ErrorDescription.Replace("\"", "'", StringComparison.Ordinal)}\""));
    }

    private static async Task Forbidden(ForbiddenContext context)
    {
        var app = context.HttpContext.User.FindFirst(AppClaimType)?.Value;
        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        await CallerChallenge.WriteProblemAsync(context.HttpContext, new ProblemDetails
        {
            Type = ProblemTypes.Forbidden,
            Title = "The app is not a client of this gateway",
            Status = StatusCodes.Status403Forbidden,
            Detail = string.IsNullOrEmpty(app)
                ? "The token names no app (azp or appid claim), so no client's limits can apply."
                : $"The token's app '{app}' is not mapped to a client: the gateway's operators add it as Clients__{{name}}__AppIds__{{i}}.",
        });
    }
}
