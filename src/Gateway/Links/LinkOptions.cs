using Microsoft.Extensions.Options;

namespace Gateway.Links;

/// <summary>The key that signs link tickets (section <c>Gateway</c>, shared with the other features).</summary>
public sealed class LinkOptions
{
    public const string SectionName = "Gateway";

    /// <summary>Base64 of at least 32 random bytes; every replica needs the same. Empty: a random key in Development, plain links elsewhere.</summary>
    public string? LinkSigningKey { get; set; }

    /// <summary>The key before the current one, still accepted while a rotation rolls out (tickets live 5 minutes).</summary>
    public string? PreviousLinkSigningKey { get; set; }

    internal const int MinKeyBytes = 32;

    /// <summary>The decoded key, or null when <paramref name="base64"/> is empty or not a key of at least 32 bytes.</summary>
    internal static byte[]? Decode(string? base64)
    {
        if (string.IsNullOrWhiteSpace(base64))
        {
            return null;
        }

        var buffer = new byte[base64.Length];
        return Convert.TryFromBase64String(base64.Trim(), buffer, out var length) && length >= MinKeyBytes ? buffer[..length] : null;
    }
}

internal sealed class LinkOptionsValidator : IValidateOptions<LinkOptions>
{
    public ValidateOptionsResult Validate(string? name, LinkOptions options)
    {
        var failures = new List<string>();
        foreach (var (setting, value) in new[] { ("LinkSigningKey", options.LinkSigningKey), ("PreviousLinkSigningKey", options.PreviousLinkSigningKey) })
        {
            if (!string.IsNullOrWhiteSpace(value) && LinkOptions.Decode(value) is null)
            {
                failures.Add($"Gateway__{setting} must be base64 of at least {LinkOptions.MinKeyBytes} random bytes (e.g. the output of: openssl rand -base64 32).");
            }
        }

        if (string.IsNullOrWhiteSpace(options.LinkSigningKey) && !string.IsNullOrWhiteSpace(options.PreviousLinkSigningKey))
        {
            failures.Add("Gateway__PreviousLinkSigningKey is set without Gateway__LinkSigningKey: set the new key as LinkSigningKey.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
