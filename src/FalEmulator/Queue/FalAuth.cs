using Microsoft.AspNetCore.Http;

namespace FalEmulator;

/// <summary>fal's key check: "Authorization: Key &lt;key&gt;" (the key may be key_id:key_secret).</summary>
internal sealed class FalAuth(FalEmulatorOptions options)
{
    /// <summary>Null when the caller holds the key; otherwise the 401 to answer.</summary>
    public IResult? Check(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (string.IsNullOrEmpty(header))
        {
            return FalErrors.Detail(context, StatusCodes.Status401Unauthorized,
                "Authentication is required to access this application.");
        }

        const string scheme = "Key ";
        var ok = header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)
            && System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(
                System.Text.Encoding.UTF8.GetBytes(header[scheme.Length..].Trim()),
                System.Text.Encoding.UTF8.GetBytes(options.Key));
        return ok ? null : FalErrors.Detail(context, StatusCodes.Status401Unauthorized, "No user found for Key ID and Secret");
    }
}
