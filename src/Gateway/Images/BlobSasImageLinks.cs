using Gateway.Generations;
using Gateway.Links;

namespace Gateway.Images;

/// <summary>
/// <c>Images:AzureBlob:SasLinks=true</c>: a result's stored images link straight to their blobs with a read-only SAS for that
/// one blob, valid as long as a link ticket, so a page's <c>&lt;img&gt;</c> loads them from Blob Storage, not the gateway.
/// </summary>
internal sealed class BlobSasImageLinks(AzureBlobImageStore store, TimeProvider time) : IImageLinks
{
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    public Func<int, string> For(HttpRequest request, GenerationRecord record)
    {
        var now = time.GetUtcNow();
        return index => store.SignedUrl(record.Id, index, now - ClockSkew, now + LinkTickets.Lifetime).ToString();
    }
}
