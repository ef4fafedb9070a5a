using System.Text.Json;
using Gateway.Storage;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Gateway.Generations;

internal sealed class RedisGenerationStore(RedisConnection redis, IOptions<GenerationOptions> options) : IGenerationStore
{
    private const byte InlineFormat = (byte)'J';
    private const byte SkeletonFormat = (byte)'S';

    private static readonly LuaScript ReleaseScript = LuaScript.Prepare(
        "if redis.call('get', @key) == @owner then return redis.call('del', @key) else return 0 end");

    private IDatabase Db => redis.Database;

    private TimeSpan Ttl => options.Value.ResultTtl;

    public bool IsShared => true;

    public async Task CreateAsync(GenerationRecord record, CancellationToken cancellationToken)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(record, GenerationStoreJsonContext.Default.GenerationRecord);
        await Db.StringSetAsync(RedisKeys.Generation(record.Id), json, Ttl);
    }

    public async Task<GenerationRecord?> GetAsync(string id, CancellationToken cancellationToken)
    {
        var value = await Db.StringGetAsync(RedisKeys.Generation(id));
        return value.IsNull ? null : JsonSerializer.Deserialize((byte[])value!, GenerationStoreJsonContext.Default.GenerationRecord);
    }

    public async Task<bool> CompleteAsync(GenerationRecord terminal, StoredResult? result, CancellationToken cancellationToken)
    {
        var key = RedisKeys.Generation(terminal.Id);
        while (true)
        {
            var current = await Db.StringGetAsync(key);
            if (!current.IsNull
                && JsonSerializer.Deserialize((byte[])current!, GenerationStoreJsonContext.Default.GenerationRecord) is { IsTerminal: true })
            {
                return false;
            }

            var transaction = Db.CreateTransaction();
            transaction.AddCondition(current.IsNull ? Condition.KeyNotExists(key) : Condition.StringEqual(key, current));
            var writes = new List<Task>
            {
                transaction.StringSetAsync(key, JsonSerializer.SerializeToUtf8Bytes(terminal, GenerationStoreJsonContext.Default.GenerationRecord), Ttl),
            };
            if (result is not null)
            {
                var document = new byte[result.Document.Length + 1];
                document[0] = result.HasBlobs ? SkeletonFormat : InlineFormat;
                result.Document.CopyTo(document, 1);
                writes.Add(transaction.StringSetAsync(RedisKeys.Result(terminal.Id), document, Ttl));
                for (var i = 0; i < result.Blobs.Count; i++)
                {
                    writes.Add(transaction.StringSetAsync(RedisKeys.Blob(terminal.Id, i), result.Blobs[i], Ttl));
                }
            }

            if (await transaction.ExecuteAsync())
            {
                await Task.WhenAll(writes);
                return true;
            }
        }
    }

    public async Task<StoredResult?> GetResultAsync(string id, CancellationToken cancellationToken)
    {
        var value = await Db.StringGetAsync(RedisKeys.Result(id));
        if (value.IsNull)
        {
            return null;
        }

        var bytes = (byte[])value!;
        return new StoredResult(bytes[0] == SkeletonFormat, bytes[1..], []);
    }

    public async Task<byte[]?> GetBlobAsync(string id, int index, CancellationToken cancellationToken)
    {
        var value = await Db.StringGetAsync(RedisKeys.Blob(id, index));
        return value.IsNull ? null : (byte[])value!;
    }

    public Task<bool> TryAcquireLeaseAsync(string purpose, string id, string owner, TimeSpan ttl) =>
        Db.StringSetAsync(RedisKeys.Lease(purpose, id), owner, ttl, When.NotExists);

    public Task ReleaseLeaseAsync(string purpose, string id, string owner) =>
        ReleaseScript.EvaluateAsync(Db, new { key = RedisKeys.Lease(purpose, id), owner = (RedisValue)owner });

    public Task SchedulePendingAsync(string id, DateTimeOffset dueAt) =>
        Db.SortedSetAddAsync(RedisKeys.Pending, id, dueAt.ToUnixTimeMilliseconds());

    public Task RemovePendingAsync(string id) => Db.SortedSetRemoveAsync(RedisKeys.Pending, id);

    public async Task<IReadOnlyList<string>> GetDuePendingAsync(DateTimeOffset now, int max)
    {
        var due = await Db.SortedSetRangeByScoreAsync(RedisKeys.Pending, double.NegativeInfinity, now.ToUnixTimeMilliseconds(), take: max);
        return due.Select(v => v.ToString()).ToList();
    }

    public Task<long> CountPendingAsync() => Db.SortedSetLengthAsync(RedisKeys.Pending);

    public async Task<DateTimeOffset?> GetPendingDueAsync(string id) =>
        await Db.SortedSetScoreAsync(RedisKeys.Pending, id) is { } score ? DateTimeOffset.FromUnixTimeMilliseconds((long)score) : null;

    /// <summary>The connection's cached state: no round trip, so a probe or a submit never waits on Redis.</summary>
    public Task<bool> IsHealthyAsync(CancellationToken cancellationToken) => Task.FromResult(redis.IsAvailable);
}
