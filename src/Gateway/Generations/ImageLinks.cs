namespace Gateway.Generations;

/// <summary>How a representation links an image that is in the gateway's image store (<c>gw-image:N</c> in a stored result).</summary>
internal interface IImageLinks
{
    /// <summary>An absolute URL a page can put in <c>&lt;img src&gt;</c> as it is, for the caller that made <paramref name="request"/>.</summary>
    string UrlFor(HttpRequest request, GenerationRecord record, int index);
}

/// <summary>
/// The gateway's own image route, absolute on the host the caller reached (so a page on another origin can use it; behind a
/// proxy, set <c>ASPNETCORE_FORWARDEDHEADERS_ENABLED=true</c> so scheme and host are the public ones).
/// </summary>
internal sealed class GatewayImageLinks : IImageLinks
{
    public string UrlFor(HttpRequest request, GenerationRecord record, int index) =>
        $"{request.Scheme}://{request.Host}{request.PathBase}{GenerationLinks.For(record.Id).Self}/images/{index}";
}

/// <summary>What writing a stored result needs: its blobs (large data-URI images) and the links to its images in the image store.</summary>
internal sealed record ResultParts(Func<int, CancellationToken, Task<byte[]?>> LoadBlob, Func<int, string> ImageUrl);
