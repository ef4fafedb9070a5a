using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;

namespace Gateway.Images;

/// <summary>Which image store keeps copies of the results' images.</summary>
public enum ImageStoreKind
{
    /// <summary>No copies: results show fal's URLs, as fal returned them.</summary>
    None,

    /// <summary>A directory (in Kubernetes, a ReadWriteMany volume shared by the replicas).</summary>
    FileSystem,

    /// <summary>An Azure Blob Storage container.</summary>
    AzureBlob,
}

/// <summary>The image store: where the images of completed generations are copied and served from (section <c>Images</c>).</summary>
public sealed partial class ImagesOptions : IValidatableObject
{
    public const string SectionName = "Images";

    /// <summary><c>None</c>, <c>FileSystem</c> or <c>AzureBlob</c> (any case); read as <see cref="Kind"/>.</summary>
    public string Store { get; set; } = nameof(ImageStoreKind.None);

    public ImageStoreKind Kind => Enum.TryParse<ImageStoreKind>(Store, ignoreCase: true, out var kind) && Enum.IsDefined(kind) ? kind : ImageStoreKind.None;

    /// <summary>FileSystem: the directory; empty: <c>mai-image-gateway/images</c> under the system's temporary directory.</summary>
    public string? Path { get; set; }

    public AzureBlobImageOptions AzureBlob { get; set; } = new();

    /// <summary>With a store, how long fal is asked to keep its own copy of the outputs (X-Fal-Object-Lifecycle-Preference).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "365.00:00:00")]
    public TimeSpan FalExpiration { get; set; } = TimeSpan.FromHours(1);

    /// <summary>False: submits send <c>X-Fal-Store-IO: 0</c>, so fal keeps no copy of the request's inputs and outputs.</summary>
    public bool FalStoreIO { get; set; } = true;

    /// <summary>Largest image copied; a larger one fails its copy (and keeps fal's URL).</summary>
    [Range(1024, 1024L * 1024 * 1024)]
    public long MaxImageBytes { get; set; } = 64 * 1024 * 1024;

    /// <summary>Longest one copy attempt (all images of a generation) may take.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan CopyTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Attempts per generation before its copy is given up (fal's URLs stay).</summary>
    [Range(1, 100)]
    public int CopyAttempts { get; set; } = 5;

    /// <summary>Wait before the second attempt; it doubles for each one after.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan CopyRetryDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How often each replica looks for copies that are due (retries, or a replica that died mid-copy).</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan CopyPollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often each replica deletes images whose generation has expired.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "1.00:00:00")]
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromMinutes(10);

    public bool Enabled => Kind != ImageStoreKind.None;

    public string EffectivePath => string.IsNullOrWhiteSpace(Path)
        ? System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mai-image-gateway", "images")
        : Path;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!Enum.TryParse<ImageStoreKind>(Store, ignoreCase: true, out var kind) || !Enum.IsDefined(kind) || int.TryParse(Store, out _))
        {
            yield return new ValidationResult($"Images__Store must be None, FileSystem or AzureBlob, not '{Store}'.", [nameof(Store)]);
            yield break;
        }

        if (kind != ImageStoreKind.AzureBlob)
        {
            yield break;
        }

        var azure = AzureBlob;
        var hasConnection = !string.IsNullOrWhiteSpace(azure.ConnectionString);
        var hasUri = !string.IsNullOrWhiteSpace(azure.ServiceUri);
        if (hasConnection == hasUri)
        {
            yield return new ValidationResult(
                "Images__Store=AzureBlob needs exactly one of Images__AzureBlob__ConnectionString or Images__AzureBlob__ServiceUri (with workload identity).",
                ["AzureBlob.ConnectionString"]);
        }

        if (azure.SasLinks && !hasConnection)
        {
            yield return new ValidationResult(
                "Images__AzureBlob__SasLinks=true signs with the account key: it needs Images__AzureBlob__ConnectionString (with AccountKey).",
                ["AzureBlob.SasLinks"]);
        }

        if (hasUri && (!Uri.TryCreate(azure.ServiceUri, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http")))
        {
            yield return new ValidationResult(
                $"Images__AzureBlob__ServiceUri must be the account's blob endpoint, an absolute https URL, not '{azure.ServiceUri}'.", ["AzureBlob.ServiceUri"]);
        }

        if (!ContainerName().IsMatch(azure.Container) || azure.Container.Contains("--", StringComparison.Ordinal))
        {
            yield return new ValidationResult(
                $"Images__AzureBlob__Container must be a container name (3-63 lowercase letters, digits and single hyphens), not '{azure.Container}'.",
                ["AzureBlob.Container"]);
        }
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")]
    private static partial Regex ContainerName();
}

/// <summary>Where in Azure Blob Storage the images go (<c>Images:AzureBlob</c>).</summary>
public sealed class AzureBlobImageOptions
{
    /// <summary>A storage connection string (with the account key, or Azurite's).</summary>
    public string? ConnectionString { get; set; }

    /// <summary>The account's blob endpoint (<c>https://{account}.blob.core.windows.net</c>), reached with workload identity.</summary>
    public string? ServiceUri { get; set; }

    /// <summary>The container; created when missing.</summary>
    public string Container { get; set; } = "generated-images";

    /// <summary>
    /// True: image URLs in results are read-only SAS URLs straight to the blob, valid as long as a link ticket, so the bytes
    /// do not pass through the gateway. Needs the account key (a connection string). False: the gateway serves them.
    /// </summary>
    public bool SasLinks { get; set; }
}
