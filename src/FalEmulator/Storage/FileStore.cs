using System.Collections.Concurrent;

namespace FalEmulator;

/// <summary>A file on the stand-in's CDN; <see cref="RequestId"/> is the job that made it, <see cref="ExpiresAt"/> when it goes.</summary>
internal sealed record StoredFile(byte[] Bytes, string ContentType, string? RequestId = null, DateTimeOffset? ExpiresAt = null);

/// <summary>The stand-in's CDN: generated images and uploads, served at /files/{name}.</summary>
internal sealed class FileStore
{
    private readonly ConcurrentDictionary<string, StoredFile> _files = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, PendingUpload> _uploads = new(StringComparer.Ordinal);

    public void Put(string name, byte[] bytes, string contentType) => _files[name] = new StoredFile(bytes, contentType);

    public void Put(string name, StoredFile file) => _files[name] = file;

    /// <summary>The file, or null when there is none or it has expired (an expired file is deleted, as fal's CDN deletes it).</summary>
    public StoredFile? Get(string name, DateTimeOffset now)
    {
        if (!_files.TryGetValue(name, out var file))
        {
            return null;
        }

        if (file.ExpiresAt <= now)
        {
            _files.TryRemove(name, out _);
            return null;
        }

        return file;
    }

    public string Initiate(string fileName, string contentType)
    {
        var token = Guid.NewGuid().ToString("N");
        _uploads[token] = new PendingUpload(fileName, contentType);
        return token;
    }

    public PendingUpload? Pending(string token) => _uploads.GetValueOrDefault(token);

    public bool Complete(string token, IEnumerable<int>? partNumbers)
    {
        if (!_uploads.TryGetValue(token, out var upload))
        {
            return false;
        }

        var numbers = partNumbers?.ToList() ?? [.. upload.Parts.Keys.Order()];
        if (numbers.Count == 0 || numbers.Exists(n => !upload.Parts.ContainsKey(n)))
        {
            return false;
        }

        using var buffer = new MemoryStream();
        foreach (var number in numbers.Order())
        {
            buffer.Write(upload.Parts[number]);
        }

        Put(upload.FileName, buffer.ToArray(), upload.ContentType);
        return true;
    }

    internal sealed class PendingUpload(string fileName, string contentType)
    {
        public string FileName { get; } = fileName;

        public string ContentType { get; } = contentType;

        public ConcurrentDictionary<int, byte[]> Parts { get; } = new();
    }
}
