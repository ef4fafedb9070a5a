namespace Gateway.Files;

/// <summary>
/// The file part as the multipart reader yields it, counted against the cap: past it the read fails and
/// <see cref="Exceeded"/> says so. A read that fails because the body did (it ended early, broke the multipart
/// format, or went over Kestrel's limit) is kept in <see cref="ReadFailure"/>, so that the client's fault can be
/// told apart from a failure of the buffer this stream is copied into.
/// </summary>
internal sealed class FilePartStream(Stream part, long maxBytes) : Stream
{
    public long BytesRead { get; private set; }

    public bool Exceeded { get; private set; }

    public Exception? ReadFailure { get; private set; }

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
        try
        {
            read = await part.ReadAsync(buffer, cancellationToken);
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            ReadFailure = e;
            throw;
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
