using System.Diagnostics.CodeAnalysis;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace Gateway.Files;

/// <summary>Why an upload was refused before anything reached fal: each is the client's to fix.</summary>
internal enum UploadRefusal
{
    /// <summary>A part's headers are malformed or over the reader's limits, or the body does not begin with the boundary.</summary>
    Malformed,

    /// <summary>The body ended (or broke off) before its closing boundary.</summary>
    Incomplete,

    NoFilePart,
    SeveralFileParts,
    Empty,
    NotAnImage,
    TooLarge,
}

/// <summary>
/// Reads a multipart/form-data upload with the framework's <see cref="MultipartReader"/> up to its closing boundary,
/// keeping the one part named <c>file</c> in a bounded buffer (memory up to 64 KB, then a temp file deleted on
/// close). The file is handed on only when the body was whole, held exactly one file part, and that part is a
/// non-empty image within the cap; anything else is an <see cref="UploadRefusal"/>, not an exception.
/// </summary>
internal sealed class FileUploadReader(Stream body, string boundary, long maxBytes) : IAsyncDisposable
{
    public const string FieldName = "file";

    // As ASP.NET Core's own form reading (FormOptions.MemoryBufferThreshold): small files never touch the disk.
    private const int MemoryThreshold = 64 * 1024;

    private FileBufferingReadStream? _file;

    /// <summary>The file's bytes from the start, once <see cref="ReadAsync"/> refused nothing.</summary>
    public Stream Content => _file ?? throw new InvalidOperationException("No file has been read.");

    public long Length { get; private set; }

    public (string ContentType, string Extension) Type { get; private set; }

    public ContentDispositionHeaderValue? Disposition { get; private set; }

    /// <summary>Reads the whole body; null when the file is ready in <see cref="Content"/>, else why it was refused.</summary>
    public async Task<UploadRefusal?> ReadAsync(CancellationToken cancellationToken)
    {
        var reader = new MultipartReader(boundary, body);
        FilePartStream? part = null;
        try
        {
            while (await reader.ReadNextSectionAsync(cancellationToken) is { } section)
            {
                if (!IsFilePart(section, out var disposition))
                {
                    continue; // other form fields are allowed; the reader skips them
                }

                if (_file is not null)
                {
                    return UploadRefusal.SeveralFileParts;
                }

                part = new FilePartStream(section.Body, maxBytes);
                _file = new FileBufferingReadStream(part, MemoryThreshold);
                Disposition = disposition;
                if (await SniffAsync(_file, cancellationToken) is { } refusal)
                {
                    return refusal; // known from the first bytes: no need to read the rest
                }

                await _file.DrainAsync(cancellationToken);
                part = null;
            }
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && Refusal(e, part) is { } refusal)
        {
            return refusal;
        }

        if (_file is null)
        {
            return UploadRefusal.NoFilePart;
        }

        Length = _file.Length;
        _file.Seek(0, SeekOrigin.Begin);
        return null;
    }

    public ValueTask DisposeAsync() => _file?.DisposeAsync() ?? ValueTask.CompletedTask;

    private async Task<UploadRefusal?> SniffAsync(Stream file, CancellationToken cancellationToken)
    {
        var head = new byte[ImageSniffer.HeaderLength];
        var read = await file.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken);
        if (read == 0)
        {
            return UploadRefusal.Empty;
        }

        if (ImageSniffer.Detect(head.AsSpan(0, read)) is not { } type)
        {
            return UploadRefusal.NotAnImage;
        }

        Type = type;
        return null;
    }

    private static bool IsFilePart(MultipartSection section, [NotNullWhen(true)] out ContentDispositionHeaderValue? disposition) =>
        ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out disposition)
        && HeaderUtilities.RemoveQuotes(disposition.Name).Value == FieldName;

    /// <summary>
    /// The client's fault behind a failed read, or null when the failure is the gateway's own (the file part read
    /// fine but its buffer failed, e.g. the temp disk): that one stays an exception and a 500.
    /// </summary>
    private static UploadRefusal? Refusal(Exception exception, FilePartStream? part) => part switch
    {
        { Exceeded: true } => UploadRefusal.TooLarge,
        { ReadFailure: { } failure } => FromBody(failure),
        null => FromBody(exception),
        _ => null,
    };

    private static UploadRefusal? FromBody(Exception exception) => exception switch
    {
        BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } => UploadRefusal.TooLarge,
        InvalidDataException => UploadRefusal.Malformed,
        IOException => UploadRefusal.Incomplete, // also Kestrel's "unexpected end of request content"
        _ => null,
    };
}
