using System.Security.Cryptography;
using Gateway.Files;
using Gateway.Hosting;

namespace Gateway.Images;

/// <summary>
/// An image's bytes on their way into the store, checked as they pass: they must be a PNG, JPEG, WebP or GIF, of the type the
/// result declares, no larger than the limit, and exactly the declared size. A check that fails ends the read with a permanent
/// <see cref="ImageCopyException"/>, so the store never commits the image. Hashes the bytes for the ETag.
/// </summary>
internal sealed class CheckedImageStream(ImageSource source, int index, long maxBytes) : ForwardOnlyStream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly byte[] _head = new byte[ImageSniffer.HeaderLength];
    private int _headLength;
    private int _headServed;

    /// <summary>The type the bytes are, once <see cref="ReadHeadAsync"/> has looked.</summary>
    public string ContentType { get; private set; } = "";

    /// <summary>True once the source was read to its end and every check passed.</summary>
    public bool Complete { get; private set; }

    /// <summary>The lowercase hex SHA-256 of the bytes, once <see cref="Complete"/>.</summary>
    public string Sha256 { get; private set; } = "";

    /// <summary>Reads the first bytes and decides the type before anything is written.</summary>
    public async Task ReadHeadAsync(CancellationToken cancellationToken)
    {
        while (_headLength < _head.Length)
        {
            var read = await source.Content.ReadAsync(_head.AsMemory(_headLength), cancellationToken);
            if (read == 0)
            {
                break;
            }

            _headLength += read;
        }

        var sniffed = ImageSniffer.Detect(_head.AsSpan(0, _headLength))?.ContentType
            ?? throw new ImageCopyException($"Image {index} is not a PNG, JPEG, WebP or GIF.", permanent: true);
        if (source.DeclaredType is { } declared && declared != sniffed)
        {
            throw new ImageCopyException($"Image {index} is {sniffed}, but the result says {declared}.", permanent: true);
        }

        ContentType = sniffed;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length == 0)
        {
            return 0;
        }

        int read;
        if (_headServed < _headLength)
        {
            read = Math.Min(buffer.Length, _headLength - _headServed);
            _head.AsMemory(_headServed, read).CopyTo(buffer);
            _headServed += read;
        }
        else
        {
            read = await source.Content.ReadAsync(buffer, cancellationToken);
        }

        if (read == 0)
        {
            Finish();
            return 0;
        }

        BytesRead += read;
        if (BytesRead > maxBytes)
        {
            throw new ImageCopyException($"Image {index} is larger than Images__MaxImageBytes ({maxBytes} bytes).", permanent: true);
        }

        if (source.DeclaredLength is { } declared && BytesRead > declared)
        {
            throw new ImageCopyException($"Image {index} is larger than the {declared} bytes the result says.", permanent: true);
        }

        _hash.AppendData(buffer.Span[..read]);
        return read;
    }

    private void Finish()
    {
        if (Complete)
        {
            return;
        }

        if (source.DeclaredLength is { } declared && BytesRead != declared)
        {
            throw new ImageCopyException($"Image {index} is {BytesRead} bytes, but the result says {declared}.", permanent: true);
        }

        Sha256 = Convert.ToHexStringLower(_hash.GetHashAndReset());
        Complete = true;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
        }

        base.Dispose(disposing);
    }
}
