using System.Buffers;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;

namespace Gateway.Webhooks;

/// <summary>
/// Reads webhook bodies whose signature headers looked right, at most <c>Webhooks:MaxConcurrentBodies</c> at
/// once. A body is hashed as it streams, cut off at <c>Webhooks:MaxBodyBytes</c>, and kept in memory only up
/// to <see cref="MemoryThreshold"/>, past which it goes to a temporary file: the signature can be checked only
/// once the whole body is hashed, and until then a body is as likely forged as not.
/// </summary>
internal sealed class WebhookBodyReader(IOptions<WebhookOptions> options) : IDisposable
{
    /// <summary>Ordinary webhooks (URLs, not data URIs) are a few KB and never leave memory.</summary>
    public const int MemoryThreshold = 1024 * 1024;

    private readonly SemaphoreSlim _slots = new(options.Value.MaxConcurrentBodies, options.Value.MaxConcurrentBodies);

    public long MaxBodyBytes => options.Value.MaxBodyBytes;

    /// <summary>Waits for a slot, then reads, hashes and buffers the body; the caller disposes the result.</summary>
    public async Task<(WebhookRejection Rejection, WebhookBody? Body)> ReadAsync(HttpContext httpContext, CancellationToken cancellationToken)
    {
        if (!await _slots.WaitAsync(options.Value.BodySlotWait, cancellationToken))
        {
            return (WebhookRejection.Busy, null);
        }

        if (httpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = MaxBodyBytes; // above Gateway:MaxRequestBodyBytes: sync_mode results carry whole images
        }

        WebhookBody? body = null;
        try
        {
            body = new WebhookBody(new FileBufferingReadStream(httpContext.Request.Body, MemoryThreshold), _slots);
            if (await body.ReadAsync(MaxBodyBytes, cancellationToken))
            {
                return (WebhookRejection.None, body);
            }

            await body.DisposeAsync();
            return (WebhookRejection.BodyTooLarge, null);
        }
        catch
        {
            if (body is null)
            {
                _slots.Release();
            }
            else
            {
                await body.DisposeAsync();
            }

            throw;
        }
    }

    public void Dispose() => _slots.Dispose();
}

/// <summary>A webhook body read whole: its SHA-256 and its bytes to parse; disposing it frees its slot and buffer.</summary>
internal sealed class WebhookBody(FileBufferingReadStream buffer, SemaphoreSlim slots) : IAsyncDisposable
{
    private int _disposed;

    public byte[] Sha256 { get; private set; } = [];

    /// <summary>The body from its first byte, once read.</summary>
    public Stream Content => buffer;

    /// <summary>False when the body is longer than <paramref name="maxBytes"/>.</summary>
    public async Task<bool> ReadAsync(long maxBytes, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var chunk = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            long total = 0;
            int read;
            while ((read = await buffer.ReadAsync(chunk, cancellationToken)) > 0)
            {
                total += read;
                if (total > maxBytes)
                {
                    return false;
                }

                hash.AppendData(chunk, 0, read);
            }
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return false; // Kestrel enforces the same limit (IHttpMaxRequestBodySizeFeature)
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }

        Sha256 = hash.GetHashAndReset();
        buffer.Seek(0, SeekOrigin.Begin);
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await buffer.DisposeAsync();
            slots.Release();
        }
    }
}
