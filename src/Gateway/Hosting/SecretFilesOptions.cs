using System.ComponentModel.DataAnnotations;

namespace Gateway.Hosting;

/// <summary>
/// Settings kept as files (section <c>Gateway</c>, shared with the other features). Its own class rather than a
/// <see cref="GatewayOptions"/> property: the directory is read before the services are registered, and a missing one
/// must stop the start with one line naming it (a validation failure the runner reports), not be skipped silently.
/// </summary>
public sealed class SecretFilesOptions : IValidatableObject
{
    public const string SectionName = "Gateway";

    /// <summary>
    /// A directory of settings, one per file named after the setting (<c>Clients__acme__KeySha256</c>), e.g. a mounted
    /// Kubernetes Secret; read at start and again whenever a file changes (client keys take effect without a restart).
    /// </summary>
    public string? SecretsPath { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!string.IsNullOrWhiteSpace(SecretsPath) && !Directory.Exists(SecretsPath))
        {
            yield return new ValidationResult(
                $"Gateway__SecretsPath names '{SecretsPath}', which is not a directory this process can read.", [nameof(SecretsPath)]);
        }
    }
}
