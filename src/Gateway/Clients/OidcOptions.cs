using Microsoft.Extensions.Options;

namespace Gateway.Clients;

/// <summary>
/// The company's identity provider, whose access tokens sign people in from browser frontends (section <c>Auth:Oidc</c>).
/// Empty <see cref="Authority"/>: tokens are not accepted, only client keys.
/// </summary>
public sealed class OidcOptions
{
    public const string SectionName = "Auth:Oidc";

    /// <summary>The issuer; its metadata and signing keys come from <c>{Authority}/.well-known/openid-configuration</c>.</summary>
    public string? Authority { get; set; }

    /// <summary>The audience the tokens must be issued for (the gateway's app id URI or client id).</summary>
    public string? Audience { get; set; }

    /// <summary>False only for a loopback issuer in tests or development: metadata over plain HTTP.</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary>The claim that names the user; empty: <c>oid</c> (Microsoft Entra ID), else <c>sub</c>.</summary>
    public string? UserClaim { get; set; }

    public bool Enabled => !string.IsNullOrWhiteSpace(Authority);
}

internal sealed class OidcOptionsValidator : IValidateOptions<OidcOptions>
{
    public ValidateOptionsResult Validate(string? name, OidcOptions options)
    {
        if (!options.Enabled)
        {
            return string.IsNullOrWhiteSpace(options.Audience)
                ? ValidateOptionsResult.Success
                : ValidateOptionsResult.Fail("Auth__Oidc__Audience is set without Auth__Oidc__Authority: set the identity provider's issuer URL too.");
        }

        var failures = new List<string>();
        if (!Uri.TryCreate(options.Authority, UriKind.Absolute, out var authority) || authority.Scheme is not ("https" or "http"))
        {
            failures.Add("Auth__Oidc__Authority must be the identity provider's issuer as an absolute http(s) URL (e.g. https://login.microsoftonline.com/{tenant}/v2.0).");
        }
        else if (authority.Scheme == "http" && options.RequireHttpsMetadata)
        {
            failures.Add("Auth__Oidc__Authority is plain http while Auth__Oidc__RequireHttpsMetadata is true: use https (set it false only for a loopback issuer in tests).");
        }

        if (string.IsNullOrWhiteSpace(options.Audience))
        {
            failures.Add("Auth__Oidc__Audience is required with Auth__Oidc__Authority: the audience the gateway's access tokens are issued for.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
