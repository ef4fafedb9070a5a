namespace Gateway.Files;

/// <summary>
/// The upload as it streams to fal: the bytes already read to sniff the type, then the rest of the part,
/// counted; past the cap it fails the read (and so the PUT), and says so in <see cref="Exceeded"/>.
/// </summary>
internal sealed class UploadStream(byte[] head, Stream rest, long maxBytes) : Stream
{
    private int _headOffset;

    public long BytesRead { get; private set; }

    public bool Exceeded { get; private set; }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => BytesRead;
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int read;
        if (_headOffset < head.Length)
        {
            read = Math.Min(buffer.Length, head.Length - _headOffset);
            head.AsMemory(_headOffset, read).CopyTo(buffer);
            _headOffset += read;
        }
        else
        {
            read = await rest.ReadAsync(buffer, cancellationToken);
        }

        BytesRead += read;
        if (BytesRead > maxBytes)
        {
            Exceeded = true;
            throw new IOException($"The file is larger than {maxBytes} bytes.");
        }

        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
