using System.Security.Claims;

namespace Gateway.Clients;

/// <summary>Who owns a generation: a configured client, and the user of that client's app who submitted it (null for a client key).</summary>
internal readonly record struct Owner(string Client, string? User);

/// <summary>The one shape of an authenticated caller, whatever proved it (client key, access token, signed link).</summary>
internal static class CallerClaims
{
    /// <summary>The user id of a caller signed in with an access token; absent for a client key.</summary>
    public const string UserClaimType = "gateway:user";

    public static ClaimsPrincipal Create(Owner owner, string authenticationType)
    {
        var claims = new List<Claim> { new(ClaimTypes.Name, owner.Client) };
        if (owner.User is { } user)
        {
            claims.Add(new Claim(UserClaimType, user));
        }

        return new ClaimsPrincipal(new ClaimsIdentity(claims, authenticationType));
    }
}

internal static class ClaimsPrincipalExtensions
{
    public static string ClientName(this ClaimsPrincipal user) =>
        user.Identity?.Name ?? throw new InvalidOperationException("The route requires an authenticated client.");

    /// <summary>The signed-in user of the client's app, or null when the caller used the client's key.</summary>
    public static string? UserId(this ClaimsPrincipal user) => user.FindFirst(CallerClaims.UserClaimType)?.Value;

    public static Owner Owner(this ClaimsPrincipal user) => new(user.ClientName(), user.UserId());
}
