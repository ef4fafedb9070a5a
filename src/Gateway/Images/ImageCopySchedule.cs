using System.Collections.Concurrent;
using Gateway.Storage;
using StackExchange.Redis;

namespace Gateway.Images;

/// <summary>
/// Completed generations whose images are still to be copied, by when each is due: what makes a copy happen even when the
/// replica that completed the generation dies before copying, and what spaces the retries. Shared by the replicas in Redis.
/// </summary>
internal interface IImageCopySchedule
{
    /// <summary>Due at <paramref name="dueAt"/> (replaces an earlier time).</summary>
    Task ScheduleAsync(string id, DateTimeOffset dueAt);

    Task RemoveAsync(string id);

    /// <summary>When it is due, or null when it is not scheduled (copied, given up, or never).</summary>
    Task<DateTimeOffset?> DueAtAsync(string id);

    Task<IReadOnlyList<string>> DueAsync(DateTimeOffset now, int max);
}

internal sealed class RedisImageCopySchedule(RedisConnection redis) : IImageCopySchedule
{
    private IDatabase Db => redis.Database;

    public Task ScheduleAsync(string id, DateTimeOffset dueAt) => Db.SortedSetAddAsync(RedisKeys.ImageCopies, id, dueAt.ToUnixTimeMilliseconds());

    public Task RemoveAsync(string id) => Db.SortedSetRemoveAsync(RedisKeys.ImageCopies, id);

    public async Task<DateTimeOffset?> DueAtAsync(string id) =>
        await Db.SortedSetScoreAsync(RedisKeys.ImageCopies, id) is { } score ? DateTimeOffset.FromUnixTimeMilliseconds((long)score) : null;

    public async Task<IReadOnlyList<string>> DueAsync(DateTimeOffset now, int max)
    {
        var due = await Db.SortedSetRangeByScoreAsync(RedisKeys.ImageCopies, double.NegativeInfinity, now.ToUnixTimeMilliseconds(), take: max);
        return [.. due.Select(v => v.ToString())];
    }
}

/// <summary>The schedule without Redis: one replica, lost on restart (as its generations are).</summary>
internal sealed class InMemoryImageCopySchedule : IImageCopySchedule
{
    private readonly ConcurrentDictionary<string, DateTimeOffset> _due = new(StringComparer.Ordinal);

    public Task ScheduleAsync(string id, DateTimeOffset dueAt)
    {
        _due[id] = dueAt;
        return Task.CompletedTask;
    }

    public Task RemoveAsync(string id)
    {
        _due.TryRemove(id, out _);
        return Task.CompletedTask;
    }

    public Task<DateTimeOffset?> DueAtAsync(string id) => Task.FromResult(_due.TryGetValue(id, out var due) ? due : (DateTimeOffset?)null);

    public Task<IReadOnlyList<string>> DueAsync(DateTimeOffset now, int max) =>
        Task.FromResult<IReadOnlyList<string>>([.. _due.Where(d => d.Value <= now).OrderBy(d => d.Value).Take(max).Select(d => d.Key)]);
}
