using Microsoft.Extensions.Options;

namespace Gateway.Images;

/// <summary>
/// Images as files: <c>{Path}/{id}/{index}</c>. Written to a temporary name and renamed, so a reader never sees half an image;
/// each file's last-write time is set to its generation's completion, which the sweep compares with the result TTL.
/// </summary>
internal sealed partial class FileSystemImageStore(IOptions<ImagesOptions> options, ILogger<FileSystemImageStore> logger) : IImageStore
{
    private const string PartialSuffix = ".partial";
    private static readonly TimeSpan AbandonedPartialAge = TimeSpan.FromHours(1);

    private readonly string _root = Path.GetFullPath(options.Value.EffectivePath);

    public string Root => _root;

    public async Task WriteAsync(string id, int index, Stream content, string contentType, DateTimeOffset completedAt, CancellationToken cancellationToken)
    {
        var final = PathOf(id, index);
        Directory.CreateDirectory(Path.GetDirectoryName(final)!);
        var partial = $"{final}.{Guid.NewGuid():N}{PartialSuffix}";
        try
        {
            await using (var file = new FileStream(partial, FileMode.CreateNew, FileAccess.Write, FileShare.None, 64 * 1024, FileOptions.Asynchronous))
            {
                await content.CopyToAsync(file, 64 * 1024, cancellationToken);
            }

            File.SetLastWriteTimeUtc(partial, completedAt.UtcDateTime);
            File.Move(partial, final, overwrite: true);
        }
        catch
        {
            TryDelete(partial);
            throw;
        }
    }

    public Task<Stream?> OpenReadAsync(string id, int index, CancellationToken cancellationToken)
    {
        if (!ImageKeys.IsSafe(id))
        {
            return Task.FromResult<Stream?>(null);
        }

        try
        {
            // FileShare.Delete: the sweep may unlink it meanwhile; this reader keeps its bytes until it is done.
            return Task.FromResult<Stream?>(new FileStream(PathOf(id, index), FileMode.Open, FileAccess.Read,
                FileShare.Read | FileShare.Delete, 64 * 1024, FileOptions.Asynchronous));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return Task.FromResult<Stream?>(null);
        }
    }

    public Task<int> SweepAsync(DateTimeOffset completedBefore, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(_root))
        {
            return Task.FromResult(0);
        }

        var deleted = 0;
        var abandoned = DateTime.UtcNow - AbandonedPartialAge;
        foreach (var directory in Directory.EnumerateDirectories(_root))
        {
            cancellationToken.ThrowIfCancellationRequested();
            foreach (var file in Directory.EnumerateFiles(directory))
            {
                var written = File.GetLastWriteTimeUtc(file);
                var expired = file.EndsWith(PartialSuffix, StringComparison.Ordinal)
                    ? written < abandoned
                    : written <= completedBefore.UtcDateTime;
                if (expired && TryDelete(file))
                {
                    deleted++;
                }
            }

            try
            {
                if (!Directory.EnumerateFileSystemEntries(directory).Any())
                {
                    Directory.Delete(directory);
                }
            }
            catch (IOException)
            {
                // a copy wrote into it meanwhile: it stays
            }
        }

        return Task.FromResult(deleted);
    }

    private string PathOf(string id, int index) => Path.Combine(_root, ImageKeys.Of(id, index));

    private bool TryDelete(string path)
    {
        try
        {
            File.Delete(path);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogDeleteFailed(logger, path, e);
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not delete stored image file {Path}")]
    private static partial void LogDeleteFailed(ILogger logger, string path, Exception exception);
}
