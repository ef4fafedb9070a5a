using Gateway.Hosting;

namespace Gateway.Files;

/// <summary>
/// The file part as the multipart reader yields it, counted against the cap: past it the read fails and
/// <see cref="Exceeded"/> says so. A read that fails because the body did (it ended early, broke the multipart
/// format, or went over Kestrel's limit) is kept in <see cref="ReadFailure"/>, so that the client's fault can be
/// told apart from a failure of the buffer this stream is copied into.
/// </summary>
internal sealed class FilePartStream(Stream part, long maxBytes) : ForwardOnlyStream
{
    public bool Exceeded { get; private set; }

    public Exception? ReadFailure { get; private set; }

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
}
