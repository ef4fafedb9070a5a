using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace Gateway.Clients;

/// <summary>One internal client (section <c>Clients:{name}</c>).</summary>
public sealed class ClientOptions
{
    /// <summary>The client's key as lowercase hex SHA-256; the key itself is never configured.</summary>
    public string? KeySha256 { get; set; }

    /// <summary>
    /// More valid key hashes, by index (<c>Clients__{name}__KeySha256s__{i}</c>): during a rotation the new key and the
    /// old one both authenticate the client. Kept by index so that a bad entry is named exactly.
    /// </summary>
    public Dictionary<string, string?> KeySha256s { get; } = new(StringComparer.Ordinal);

    /// <summary>Every configured key hash with the setting it came from.</summary>
    internal IEnumerable<(string Setting, string? Hash)> KeyHashes(string client)
    {
        if (KeySha256 is not null)
        {
            yield return ($"Clients__{client}__KeySha256", KeySha256);
        }

        foreach (var (index, hash) in KeySha256s)
        {
            yield return ($"Clients__{client}__KeySha256s__{index}", hash);
        }
    }

    /// <summary>Overrides <c>Limits:RequestsPerMinute</c> for this client.</summary>
    public int? RequestsPerMinute { get; set; }

    /// <summary>Overrides <c>Limits:ImagesPerDay</c> for this client.</summary>
    public int? ImagesPerDay { get; set; }

    /// <summary>Overrides <c>Limits:MaxConcurrent</c> for this client.</summary>
    public int? MaxConcurrent { get; set; }

    /// <summary>Overrides <c>Limits:DailyBudgetUsd</c> for this client.</summary>
    public decimal? DailyBudgetUsd { get; set; }

    /// <summary>The identity provider's app (client) ids whose access tokens act for this client (the token's <c>azp</c> or <c>appid</c>).</summary>
    public List<string> AppIds { get; set; } = [];

    /// <summary>Limits for each signed-in user of this client, on top of the client's own.</summary>
    public PerUserLimitOptions PerUser { get; set; } = new();
}

/// <summary>Optional limits per signed-in user of one client (section <c>Clients:{name}:PerUser</c>); unset: none.</summary>
public sealed class PerUserLimitOptions
{
    /// <summary>Submits one user may make per clock minute (UTC).</summary>
    public int? RequestsPerMinute { get; set; }

    /// <summary>Images (the sum of num_images) one user may request per UTC day.</summary>
    public int? ImagesPerDay { get; set; }
}

/// <summary>Every configured client, by name (section <c>Clients</c>).</summary>
public sealed class ClientsOptions
{
    public const string SectionName = "Clients";

    public Dictionary<string, ClientOptions> Clients { get; } = new(StringComparer.Ordinal);
}

internal sealed partial class ClientsOptionsValidator(IHostEnvironment environment) : IValidateOptions<ClientsOptions>
{
    public ValidateOptionsResult Validate(string? name, ClientsOptions options)
    {
        var failures = new List<string>();
        if (options.Clients.Count == 0 && !environment.IsDevelopment())
        {
            failures.Add("No clients are configured: set Clients__{name}__KeySha256 to the lowercase hex SHA-256 of each client's key "
                + "(e.g. Clients__web__KeySha256=$(printf %s \"$KEY\" | sha256sum | cut -d' ' -f1)), as a variable or as a file in Gateway__SecretsPath.");
        }

        var apps = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (client, settings) in options.Clients)
        {
            // A client used only from browsers (access tokens of its apps) needs no key.
            var hashes = settings.KeyHashes(client).ToList();
            if (hashes.Count == 0 && settings.AppIds.Count == 0)
            {
                failures.Add($"Clients__{client}__KeySha256 must be set (or Clients__{client}__KeySha256s__{{i}}): the client has no key, "
                    + $"and it is not used only with access tokens of its apps (Clients__{client}__AppIds__0).");
            }

            foreach (var (setting, hash) in hashes)
            {
                if (hash is null || !Sha256Hex().IsMatch(hash))
                {
                    failures.Add($"{setting} must be 64 lowercase hex characters (the SHA-256 of the key, not the key).");
                }
            }

            for (var i = 0; i < settings.AppIds.Count; i++)
            {
                if (string.IsNullOrWhiteSpace(settings.AppIds[i]))
                {
                    failures.Add($"Clients__{client}__AppIds__{i} must not be empty.");
                }
                else if (!apps.TryAdd(settings.AppIds[i], client))
                {
                    failures.Add($"Clients__{client}__AppIds__{i} ('{settings.AppIds[i]}') is already an app of client '{apps[settings.AppIds[i]]}': an app acts for one client.");
                }
            }

            if (settings.PerUser.RequestsPerMinute is <= 0)
            {
                failures.Add($"Clients__{client}__PerUser__RequestsPerMinute must be positive.");
            }

            if (settings.PerUser.ImagesPerDay is <= 0)
            {
                failures.Add($"Clients__{client}__PerUser__ImagesPerDay must be positive.");
            }

            if (settings.RequestsPerMinute is <= 0)
            {
                failures.Add($"Clients__{client}__RequestsPerMinute must be positive.");
            }

            if (settings.ImagesPerDay is <= 0)
            {
                failures.Add($"Clients__{client}__ImagesPerDay must be positive.");
            }

            if (settings.MaxConcurrent is <= 0)
            {
                failures.Add($"Clients__{client}__MaxConcurrent must be positive.");
            }

            if (settings.DailyBudgetUsd is < 0)
            {
                failures.Add($"Clients__{client}__DailyBudgetUsd must not be negative.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    // \z, not $: "$" also matches before a final newline, which Convert.FromHexString would then refuse.
    [GeneratedRegex(@"\A[0-9a-f]{64}\z")]
    private static partial Regex Sha256Hex();
}
