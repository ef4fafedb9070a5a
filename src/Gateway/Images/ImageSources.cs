using System.Buffers.Text;
using System.Net;
using Gateway.Generations;
using Microsoft.Extensions.Options;

namespace Gateway.Images;

/// <summary>An image's bytes as they come, and the type they should be (the result's word, or the data URI's).</summary>
internal sealed record ImageSource(Stream Content, string? DeclaredType, long? DeclaredLength) : IAsyncDisposable
{
    public ValueTask DisposeAsync() => Content.DisposeAsync();
}

/// <summary>
/// Opens an image of a stored result where its bytes are: fal's CDN (streamed from the response), a large sync_mode data
/// URI kept as a blob in the generation store (streamed in ranges), or a small data URI inside the result.
/// </summary>
internal sealed class ImageSources(HttpClient http, IGenerationStore generations, IOptions<ImagesOptions> options)
{
    public async Task<ImageSource> OpenAsync(string id, ResultImage image, CancellationToken cancellationToken)
    {
        var declared = MediaType(image.ContentType);
        if (image.Blob is { } blob)
        {
            var content = await generations.OpenBlobAsync(id, blob, cancellationToken)
                ?? throw new ImageCopyException($"Image {image.Index}'s bytes are no longer in the store.", permanent: true);
            return new ImageSource(content, declared ?? DataUriType(image.Url), image.FileSize);
        }

        if (image.Url is not { } url)
        {
            throw new ImageCopyException($"Image {image.Index} has no URL.", permanent: true);
        }

        if (url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            return new ImageSource(new MemoryStream(DecodeDataUri(url, image.Index), writable: false), declared ?? DataUriType(url), image.FileSize);
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http"))
        {
            throw new ImageCopyException($"Image {image.Index}'s URL is not an http(s) URL.", permanent: true);
        }

        return await DownloadAsync(uri, image, declared, cancellationToken);
    }

    private async Task<ImageSource> DownloadAsync(Uri uri, ResultImage image, string? declared, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            throw new ImageCopyException($"Image {image.Index} could not be fetched from fal ({e.HttpRequestError}).", permanent: false, e);
        }

        try
        {
            if (!response.IsSuccessStatusCode)
            {
                // A 404 may be a CDN that has not caught up yet: every failure gets its retries.
                throw new ImageCopyException($"fal's CDN answered {(int)response.StatusCode} for image {image.Index}.",
                    permanent: response.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.Gone);
            }

            if (response.Content.Headers.ContentLength is { } length && length > options.Value.MaxImageBytes)
            {
                throw new ImageCopyException($"Image {image.Index} is {length} bytes, over Images__MaxImageBytes.", permanent: true);
            }

            var served = MediaType(response.Content.Headers.ContentType?.MediaType);
            if (declared is not null && served is not null && served.StartsWith("image/", StringComparison.Ordinal) && served != declared)
            {
                throw new ImageCopyException($"fal's CDN serves image {image.Index} as {served}, the result says {declared}.", permanent: true);
            }

            var content = await response.Content.ReadAsStreamAsync(cancellationToken);
            return new ImageSource(new ResponseStream(content, response), declared, image.FileSize ?? response.Content.Headers.ContentLength);
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    /// <summary>A type as compared: lower case, without parameters; <c>image/jpg</c> read as <c>image/jpeg</c>.</summary>
    public static string? MediaType(string? type)
    {
        if (string.IsNullOrWhiteSpace(type))
        {
            return null;
        }

        var bare = type.Split(';', 2)[0].Trim().ToLowerInvariant();
        return bare == "image/jpg" ? "image/jpeg" : bare;
    }

    private static string? DataUriType(string? prefix) =>
        prefix is not null && prefix.StartsWith("data:", StringComparison.OrdinalIgnoreCase) ? MediaType(prefix[5..].Split([';', ','], 2)[0]) : null;

    private static byte[] DecodeDataUri(string url, int index)
    {
        var comma = url.IndexOf(',', StringComparison.Ordinal);
        if (comma < 0 || !url.AsSpan(0, comma).EndsWith(";base64", StringComparison.OrdinalIgnoreCase))
        {
            throw new ImageCopyException($"Image {index} is a data URI that is not base64.", permanent: true);
        }

        var payload = url.AsSpan(comma + 1);
        var bytes = new byte[Base64.GetMaxDecodedFromUtf8Length(payload.Length)];
        if (!Convert.TryFromBase64Chars(payload, bytes, out var written))
        {
            throw new ImageCopyException($"Image {index} is a data URI whose base64 does not decode.", permanent: true);
        }

        return bytes[..written];
    }

    /// <summary>The response body, which disposes its response with it.</summary>
    private sealed class ResponseStream(Stream inner, HttpResponseMessage response) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.ReadAsync(buffer, offset, count, cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                response.Dispose();
            }

            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync();
            response.Dispose();
            await base.DisposeAsync();
        }
    }
}
