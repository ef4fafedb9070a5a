using System.Buffers.Text;
using System.Globalization;
using System.Text;
using Gateway.Clients;
using Gateway.Storage;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Gateway.Generations;

/// <summary>A place in a client's history, newest first: the (created_at in Unix ms, id) of the last item seen.</summary>
internal readonly record struct HistoryCursor(long Score, string Id)
{
    public string Encode() => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{Score}:{Id}")));

    public static bool TryDecode(string text, out HistoryCursor cursor)
    {
        cursor = default;
        try
        {
            var plain = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(text));
            var colon = plain.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || colon == plain.Length - 1 || !long.TryParse(plain.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var score))
            {
                return false;
            }

            cursor = new HistoryCursor(score, plain[(colon + 1)..]);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>The history's order: newer first, and among equal times the greater id first (Redis's reverse order).</summary>
    public static int CompareNewestFirst(HistoryCursor a, HistoryCursor b) =>
        a.Score != b.Score ? b.Score.CompareTo(a.Score) : string.CompareOrdinal(b.Id, a.Id);
}

/// <summary>
/// Each owner's (a client's key, or one signed-in user of a client) generations by creation time, so <c>GET /v1/generations</c> can page through them newest first.
/// Paging continues strictly after the cursor's (time, id), so generations added meanwhile (always newer)
/// never shift a later page: no item is repeated or skipped.
/// </summary>
internal interface IGenerationHistory
{
    Task AddAsync(GenerationRecord record);

    /// <summary>Up to <paramref name="take"/> of the owner's entries strictly after <paramref name="after"/> (from the newest when null).</summary>
    Task<IReadOnlyList<HistoryCursor>> ListAsync(Owner owner, HistoryCursor? after, int take);
}

internal sealed class RedisGenerationHistory(RedisConnection redis, IOptions<GenerationOptions> options, TimeProvider time) : IGenerationHistory
{
    private IDatabase Db => redis.Database;

    public async Task AddAsync(GenerationRecord record)
    {
        var key = Key(new Owner(record.Client, record.User));
        var ttl = options.Value.ResultTtl;
        var batch = Db.CreateBatch();
        var writes = new Task[]
        {
            batch.SortedSetAddAsync(key, record.Id, record.CreatedAt.ToUnixTimeMilliseconds()),
            // Entries older than the records themselves point at nothing: drop them as new ones arrive.
            batch.SortedSetRemoveRangeByScoreAsync(key, double.NegativeInfinity, (time.GetUtcNow() - ttl).ToUnixTimeMilliseconds()),
            batch.KeyExpireAsync(key, ttl),
        };
        batch.Execute();
        await Task.WhenAll(writes);
    }

    /// <summary>A client's own history (its key's submits), or one signed-in user's of that client.</summary>
    private static RedisKey Key(Owner owner) => owner.User is { } user ? RedisKeys.History(owner.Client, user) : RedisKeys.History(owner.Client);

    public async Task<IReadOnlyList<HistoryCursor>> ListAsync(Owner owner, HistoryCursor? after, int take)
    {
        var key = Key(owner);
        var found = new List<HistoryCursor>(take);
        if (after is { } cursor)
        {
            // The rest of the cursor's own millisecond (ids below the cursor's), then everything older.
            var sameTime = await Db.SortedSetRangeByScoreAsync(key, cursor.Score, cursor.Score, Exclude.None, Order.Descending);
            found.AddRange(sameTime.Select(m => new HistoryCursor(cursor.Score, m.ToString()))
                .Where(c => string.CompareOrdinal(c.Id, cursor.Id) < 0)
                .Take(take));
        }

        if (found.Count < take)
        {
            var older = await Db.SortedSetRangeByScoreWithScoresAsync(
                key, double.NegativeInfinity, after?.Score ?? double.PositiveInfinity,
                after is null ? Exclude.None : Exclude.Stop, Order.Descending, 0, take - found.Count);
            found.AddRange(older.Select(e => new HistoryCursor((long)e.Score, e.Element.ToString())));
        }

        return found;
    }
}

internal sealed class InMemoryGenerationHistory(IOptions<GenerationOptions> options, TimeProvider time) : IGenerationHistory
{
    private readonly Dictionary<Owner, SortedSet<HistoryCursor>> _byOwner = [];
    private readonly Lock _gate = new();

    public Task AddAsync(GenerationRecord record)
    {
        lock (_gate)
        {
            var owner = new Owner(record.Client, record.User);
            if (!_byOwner.TryGetValue(owner, out var entries))
            {
                _byOwner[owner] = entries = new SortedSet<HistoryCursor>(Comparer<HistoryCursor>.Create(HistoryCursor.CompareNewestFirst));
            }

            entries.Add(new HistoryCursor(record.CreatedAt.ToUnixTimeMilliseconds(), record.Id));
            var oldest = (time.GetUtcNow() - options.Value.ResultTtl).ToUnixTimeMilliseconds();
            entries.RemoveWhere(e => e.Score <= oldest);
        }

        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<HistoryCursor>> ListAsync(Owner owner, HistoryCursor? after, int take)
    {
        lock (_gate)
        {
            IReadOnlyList<HistoryCursor> page = _byOwner.TryGetValue(owner, out var entries)
                ? [.. entries.Where(e => after is not { } a || HistoryCursor.CompareNewestFirst(e, a) > 0).Take(take)]
                : [];
            return Task.FromResult(page);
        }
    }
}

/// <summary>Adds every accepted generation to its client's history.</summary>
internal sealed class HistoryGenerationListener(IGenerationHistory history) : IGenerationListener
{
    public Task OnSubmittedAsync(GenerationRecord record, CancellationToken cancellationToken) => history.AddAsync(record);

    public Task OnEndedAsync(GenerationRecord record, CancellationToken cancellationToken) => Task.CompletedTask;
}
