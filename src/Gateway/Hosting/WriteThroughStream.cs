namespace Gateway.Hosting;

/// <summary>
/// A stream written once, front to back, on its way into <paramref name="inner"/> (a response body): what a wrapper that
/// changes or copies the bytes on their way needs to implement is <see cref="WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/>;
/// every other <see cref="Stream"/> member (no reading, no seeking, flushes passed on) is answered here. Disposing it
/// leaves <paramref name="inner"/> open.
/// </summary>
internal abstract class WriteThroughStream(Stream inner) : Stream
{
    /// <summary>Where the bytes go.</summary>
    protected Stream Inner => inner;

    public sealed override bool CanRead => false;

    public sealed override bool CanSeek => false;

    public sealed override bool CanWrite => true;

    public sealed override long Length => throw new NotSupportedException();

    public sealed override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public abstract override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default);

    public sealed override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public sealed override void Flush() => inner.Flush();

    public sealed override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public sealed override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public sealed override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public sealed override void SetLength(long value) => throw new NotSupportedException();
}
