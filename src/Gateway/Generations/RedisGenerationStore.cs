using System.Text.Json;
using Gateway.Hosting;
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
                writes.Add(transaction.StringSetAsync(RedisKeys.Result(terminal.Id), Framed(result), Ttl));
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

    public async Task<Stream?> OpenBlobAsync(string id, int index, CancellationToken cancellationToken)
    {
        var key = RedisKeys.Blob(id, index);
        var length = await Db.StringLengthAsync(key);
        return length == 0 ? null : new RedisRangeStream(Db, key, length);
    }

    public async Task<bool> UpdateEndedAsync(
        string id, Func<GenerationRecord, GenerationRecord?> change, StoredResult? result, IReadOnlyCollection<int> dropBlobs, CancellationToken cancellationToken)
    {
        var key = RedisKeys.Generation(id);
        while (true)
        {
            var current = await Db.StringGetAsync(key);
            if (current.IsNull
                || JsonSerializer.Deserialize((byte[])current!, GenerationStoreJsonContext.Default.GenerationRecord) is not { IsTerminal: true } record
                || change(record) is not { } changed)
            {
                return false;
            }

            // Same slot ({id}), one transaction: the record never names images its result does not link, nor the reverse.
            var transaction = Db.CreateTransaction();
            transaction.AddCondition(Condition.StringEqual(key, current));
            var writes = new List<Task>
            {
                transaction.StringSetAsync(key, JsonSerializer.SerializeToUtf8Bytes(changed, GenerationStoreJsonContext.Default.GenerationRecord), null, keepTtl: true),
            };
            if (result is not null)
            {
                transaction.AddCondition(Condition.KeyExists(RedisKeys.Result(id)));
                writes.Add(transaction.StringSetAsync(RedisKeys.Result(id), Framed(result), null, keepTtl: true));
                writes.AddRange(dropBlobs.Select(i => transaction.KeyDeleteAsync(RedisKeys.Blob(id, i))));
            }

            if (await transaction.ExecuteAsync())
            {
                await Task.WhenAll(writes);
                return true;
            }
        }
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

    /// <summary>The stored form of a result: one byte that says whether it is fal's JSON or a skeleton, then the document.</summary>
    private static byte[] Framed(StoredResult result)
    {
        var document = new byte[result.Document.Length + 1];
        document[0] = result.HasBlobs ? SkeletonFormat : InlineFormat;
        result.Document.CopyTo(document, 1);
        return document;
    }

    /// <summary>The connection's cached state: no round trip, so a probe or a submit never waits on Redis.</summary>
    public Task<bool> IsHealthyAsync(CancellationToken cancellationToken) => Task.FromResult(redis.IsAvailable);
}

/// <summary>A Redis string read in ranges (GETRANGE), so a blob of tens of MB streams through a small buffer.</summary>
internal sealed class RedisRangeStream(IDatabase db, RedisKey key, long length) : ForwardOnlyStream
{
    private const int ChunkBytes = 64 * 1024; // under the large-object heap's threshold

    public override long Length => length;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (BytesRead >= length || buffer.Length == 0)
        {
            return 0;
        }

        var count = (int)Math.Min(Math.Min(buffer.Length, ChunkBytes), length - BytesRead);
        cancellationToken.ThrowIfCancellationRequested();
        var chunk = (byte[]?)await db.StringGetRangeAsync(key, BytesRead, BytesRead + count - 1);
        if (chunk is null || chunk.Length == 0)
        {
            throw new IOException("The blob changed or expired while it was being read.");
        }

        chunk.CopyTo(buffer);
        BytesRead += chunk.Length;
        return chunk.Length;
    }
}
