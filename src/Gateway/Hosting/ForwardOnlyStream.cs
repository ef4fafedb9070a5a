namespace Gateway.Hosting;

/// <summary>
/// A stream read once, from start to end, through <see cref="ReadAsync(Memory{byte}, CancellationToken)"/>: what a
/// wrapper that counts, checks or fetches bytes on their way needs to implement; every other <see cref="Stream"/>
/// member (no seeking, no writing, the synchronous and array reads) is answered here.
/// </summary>
internal abstract class ForwardOnlyStream : Stream
{
    /// <summary>The bytes handed out so far.</summary>
    public long BytesRead { get; protected set; }

    public sealed override bool CanRead => true;

    public sealed override bool CanSeek => false;

    public sealed override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public sealed override long Position
    {
        get => BytesRead;
        set => throw new NotSupportedException();
    }

    public abstract override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default);

    public sealed override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public sealed override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

    public sealed override void Flush()
    {
    }

    public sealed override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public sealed override void SetLength(long value) => throw new NotSupportedException();

    public sealed override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
