using System.Globalization;
using Azure;
using Azure.Identity;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Sas;
using Microsoft.Extensions.Options;

namespace Gateway.Images;

/// <summary>
/// Images as block blobs <c>{id}/{index}</c> in one container, uploaded in small blocks (a multi-MB image never sits in
/// memory whole) with the Content-Type checked while copying and, as metadata, when its generation completed (the sweep
/// reads it; a lifecycle rule on the container is the backstop, see the README).
/// </summary>
internal sealed partial class AzureBlobImageStore : IImageStore, IDisposable
{
    private const string CompletedAtKey = "completed_at";
    private const int BlockBytes = 256 * 1024;

    private readonly BlobContainerClient _container;
    private readonly ILogger<AzureBlobImageStore> _logger;
    private readonly SemaphoreSlim _creating = new(1, 1);
    private volatile bool _created;

    public AzureBlobImageStore(IOptions<ImagesOptions> options, ILogger<AzureBlobImageStore> logger)
    {
        var azure = options.Value.AzureBlob;
        // The SDK's own retries are short here: a copy attempt is bounded and retried by the copier as a whole.
        var clientOptions = new BlobClientOptions();
        clientOptions.Retry.MaxRetries = 2;
        clientOptions.Retry.NetworkTimeout = TimeSpan.FromSeconds(30);
        var service = string.IsNullOrWhiteSpace(azure.ConnectionString)
            // Workload identity: AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE, as AKS sets them.
            ? new BlobServiceClient(new Uri(azure.ServiceUri!), new WorkloadIdentityCredential(), clientOptions)
            : new BlobServiceClient(azure.ConnectionString, clientOptions);
        _container = service.GetBlobContainerClient(azure.Container);
        _logger = logger;
    }

    public async Task WriteAsync(string id, int index, Stream content, string contentType, DateTimeOffset completedAt, CancellationToken cancellationToken)
    {
        await EnsureContainerAsync(cancellationToken);
        var upload = new BlobUploadOptions
        {
            HttpHeaders = new BlobHttpHeaders { ContentType = contentType, CacheControl = "private, immutable" },
            Metadata = new Dictionary<string, string> { [CompletedAtKey] = completedAt.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture) },
            TransferOptions = new StorageTransferOptions { InitialTransferSize = BlockBytes, MaximumTransferSize = BlockBytes, MaximumConcurrency = 1 },
        };
        try
        {
            await _container.GetBlobClient(ImageKeys.Of(id, index)).UploadAsync(content, upload, cancellationToken);
        }
        catch (RequestFailedException e)
        {
            throw new ImageCopyException($"Blob Storage refused the image ({e.Status} {e.ErrorCode}).", permanent: false, e);
        }
    }

    public async Task<Stream?> OpenReadAsync(string id, int index, CancellationToken cancellationToken)
    {
        if (!ImageKeys.IsSafe(id))
        {
            return null;
        }

        try
        {
            // Read lazily in small ranges, seekable: a range request reads only what it asks for.
            return await _container.GetBlobClient(ImageKeys.Of(id, index))
                .OpenReadAsync(new BlobOpenReadOptions(allowModifications: false) { BufferSize = BlockBytes }, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == StatusCodes.Status404NotFound)
        {
            return null;
        }
    }

    public async Task<int> SweepAsync(DateTimeOffset completedBefore, CancellationToken cancellationToken)
    {
        var cutoff = completedBefore.ToUnixTimeMilliseconds();
        var deleted = 0;
        try
        {
            await foreach (var blob in _container.GetBlobsAsync(new GetBlobsOptions { Traits = BlobTraits.Metadata }, cancellationToken))
            {
                if (blob.Metadata.TryGetValue(CompletedAtKey, out var text)
                    && long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var completed)
                    && completed <= cutoff
                    && await _container.DeleteBlobIfExistsAsync(blob.Name, cancellationToken: cancellationToken))
                {
                    deleted++;
                }
            }
        }
        catch (RequestFailedException e) when (e.Status == StatusCodes.Status404NotFound)
        {
            // no container yet: nothing was ever stored
        }

        return deleted;
    }

    /// <summary>A read-only link straight to the blob, valid until <paramref name="expiresOn"/>, signed with the account key.</summary>
    public Uri SignedUrl(string id, int index, DateTimeOffset startsOn, DateTimeOffset expiresOn)
    {
        var blob = _container.GetBlobClient(ImageKeys.Of(id, index));
        return blob.GenerateSasUri(new BlobSasBuilder(BlobSasPermissions.Read, expiresOn)
        {
            BlobContainerName = _container.Name,
            BlobName = blob.Name,
            Resource = "b",
            StartsOn = startsOn,
        });
    }

    public void Dispose() => _creating.Dispose();

    private async Task EnsureContainerAsync(CancellationToken cancellationToken)
    {
        if (_created)
        {
            return;
        }

        await _creating.WaitAsync(cancellationToken);
        try
        {
            if (!_created)
            {
                if ((await _container.CreateIfNotExistsAsync(cancellationToken: cancellationToken))?.Value is not null)
                {
                    LogCreated(_logger, _container.Name);
                }

                _created = true;
            }
        }
        catch (RequestFailedException e)
        {
            throw new ImageCopyException($"The image container could not be created ({e.Status} {e.ErrorCode}).", permanent: false, e);
        }
        finally
        {
            _creating.Release();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Created the image container {Container}")]
    private static partial void LogCreated(ILogger logger, string container);
}
