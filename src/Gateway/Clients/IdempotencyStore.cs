using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using Gateway.Storage;
using StackExchange.Redis;

namespace Gateway.Clients;

/// <summary>
/// One Idempotency-Key's state: in flight (no status yet) while the first attempt runs, then the first
/// successful answer. <see cref="Fingerprint"/> is the SHA-256 of the method, path and raw body.
/// </summary>
internal sealed record IdempotencyEntry(
    string Owner,
    string Fingerprint,
    int? Status = null,
    string? Location = null,
    string? ContentType = null,
    byte[]? Body = null)
{
    [JsonIgnore]
    public bool Completed => Status is not null;
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(IdempotencyEntry))]
internal sealed partial class IdempotencyJsonContext : JsonSerializerContext;

internal interface IIdempotencyStore
{
    /// <summary>Marks the key in flight for <paramref name="pending"/>'s owner; null when that worked, else the entry already there.</summary>
    Task<IdempotencyEntry?> TryBeginAsync(string client, string keyHash, IdempotencyEntry pending, TimeSpan inFlightTtl);

    /// <summary>Keeps the answer, unless another attempt has taken the key since (its in-flight mark lapsed).</summary>
    Task CompleteAsync(string client, string keyHash, IdempotencyEntry completed, TimeSpan ttl);

    /// <summary>Frees the key after an answer that is not kept, if this owner still holds it.</summary>
    Task AbandonAsync(string client, string keyHash, string owner);
}

internal sealed class RedisIdempotencyStore(RedisConnection redis) : IIdempotencyStore
{
    private static readonly LuaScript CompleteScript = LuaScript.Prepare("""
        local current = redis.call('GET', @key)
        if current and cjson.decode(current)['owner'] ~= @owner then return 0 end
        redis.call('SET', @key, @entry, 'PX', @ttl)
        return 1
        """);

    private static readonly LuaScript AbandonScript = LuaScript.Prepare("""
        local current = redis.call('GET', @key)
        if current and cjson.decode(current)['owner'] == @owner then return redis.call('DEL', @key) end
        return 0
        """);

    private IDatabase Db => redis.Database;

    public async Task<IdempotencyEntry?> TryBeginAsync(string client, string keyHash, IdempotencyEntry pending, TimeSpan inFlightTtl)
    {
        var key = RedisKeys.Idempotency(client, keyHash);
        var json = JsonSerializer.SerializeToUtf8Bytes(pending, IdempotencyJsonContext.Default.IdempotencyEntry);
        while (true)
        {
            if (await Db.StringSetAsync(key, json, inFlightTtl, When.NotExists))
            {
                return null;
            }

            var existing = await Db.StringGetAsync(key);
            if (!existing.IsNull)
            {
                return JsonSerializer.Deserialize((byte[])existing!, IdempotencyJsonContext.Default.IdempotencyEntry);
            }

            // The first attempt was abandoned between our two calls: try to take the key again.
        }
    }

    public Task CompleteAsync(string client, string keyHash, IdempotencyEntry completed, TimeSpan ttl) =>
        CompleteScript.EvaluateAsync(Db, new
        {
            key = RedisKeys.Idempotency(client, keyHash),
            owner = (RedisValue)completed.Owner,
            entry = (RedisValue)JsonSerializer.SerializeToUtf8Bytes(completed, IdempotencyJsonContext.Default.IdempotencyEntry),
            ttl = (long)ttl.TotalMilliseconds,
        });

    public Task AbandonAsync(string client, string keyHash, string owner) =>
        AbandonScript.EvaluateAsync(Db, new { key = RedisKeys.Idempotency(client, keyHash), owner = (RedisValue)owner });
}

/// <summary>The same rules in memory (one replica only, no Redis configured).</summary>
internal sealed class InMemoryIdempotencyStore(TimeProvider time) : IIdempotencyStore
{
    private readonly ConcurrentDictionary<string, (IdempotencyEntry Entry, DateTimeOffset Expires)> _entries = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public Task<IdempotencyEntry?> TryBeginAsync(string client, string keyHash, IdempotencyEntry pending, TimeSpan inFlightTtl)
    {
        lock (_gate)
        {
            var key = client + "\n" + keyHash;
            var now = time.GetUtcNow();
            if (_entries.TryGetValue(key, out var existing) && existing.Expires > now)
            {
                return Task.FromResult<IdempotencyEntry?>(existing.Entry);
            }

            _entries[key] = (pending, now + inFlightTtl);
            if (_entries.Count % 1024 == 0)
            {
                foreach (var (k, v) in _entries.Where(e => e.Value.Expires <= now).ToList())
                {
                    _entries.TryRemove(k, out _);
                }
            }

            return Task.FromResult<IdempotencyEntry?>(null);
        }
    }

    public Task CompleteAsync(string client, string keyHash, IdempotencyEntry completed, TimeSpan ttl)
    {
        lock (_gate)
        {
            var key = client + "\n" + keyHash;
            var now = time.GetUtcNow();
            if (!_entries.TryGetValue(key, out var existing) || existing.Expires <= now || existing.Entry.Owner == completed.Owner)
            {
                _entries[key] = (completed, now + ttl);
            }
        }

        return Task.CompletedTask;
    }

    public Task AbandonAsync(string client, string keyHash, string owner)
    {
        lock (_gate)
        {
            var key = client + "\n" + keyHash;
            if (_entries.TryGetValue(key, out var existing) && existing.Entry.Owner == owner)
            {
                _entries.TryRemove(key, out _);
            }
        }

        return Task.CompletedTask;
    }
}
