using Gateway.Links;

namespace Gateway.Generations;

/// <summary>How a representation links the images of a generation that are in the gateway's image store (<c>gw-image:N</c>).</summary>
internal interface IImageLinks
{
    /// <summary>
    /// The links for <paramref name="request"/>'s caller to the images of <paramref name="record"/>: absolute URLs a page can put in
    /// <c>&lt;img src&gt;</c> as they are.
    /// </summary>
    Func<int, string> For(HttpRequest request, GenerationRecord record);
}

/// <summary>
/// The gateway's own image route, absolute on the host the caller reached (so a page on another origin can use it; behind a
/// proxy, set <c>ASPNETCORE_FORWARDEDHEADERS_ENABLED=true</c> so scheme and host are the public ones), carrying a signed,
/// short-lived ticket for the generation's owner when links are signed: an <c>&lt;img&gt;</c> sends no header.
/// </summary>
internal sealed class GatewayImageLinks(LinkTickets tickets) : IImageLinks
{
    public Func<int, string> For(HttpRequest request, GenerationRecord record)
    {
        // Both made when the first image link is written, if one is: most results carry fal's own image URLs.
        string? images = null;
        string? ticket = null; // one ticket for every image of the representation
        return index =>
        {
            images ??= $"{request.Scheme}://{request.Host}{request.PathBase}{GenerationLinks.SelfFor(record.Id)}/images/";
            ticket ??= tickets.Issue(new LinkScope(record.Id, GenerationLinks.ImagesResource, record.Client, record.User)) ?? "";
            var path = images + index.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return ticket.Length == 0 ? path : $"{path}?{LinkTickets.QueryName}={ticket}";
        };
    }
}

/// <summary>What writing a stored result needs: its blobs (large data-URI images) and the links to its images in the image store.</summary>
internal sealed record ResultParts(Func<int, CancellationToken, Task<byte[]?>> LoadBlob, Func<int, string> ImageUrl);
