using StackExchange.Redis;

namespace Gateway.Storage;

/// <summary>
/// Every Redis key the gateway uses, composed here and nowhere else. The generation id is a hash tag
/// (<c>{id}</c>) so a generation's keys share one slot and can change in one transaction on Redis Cluster.
/// TTLs: record, result and images live for <c>Gateway:ResultTtl</c>; leases for seconds.
/// </summary>
internal static class RedisKeys
{
    private const string Prefix = "gw:";

    public static RedisKey Generation(string id) => $"{Prefix}gen:{{{id}}}";

    public static RedisKey Result(string id) => $"{Prefix}gen:{{{id}}}:result";

    public static RedisKey Blob(string id, int index) => $"{Prefix}gen:{{{id}}}:blob:{index}";

    public static RedisKey Lease(string purpose, string id) => $"{Prefix}lease:{purpose}:{{{id}}}";

    /// <summary>Unfinished generations by when to look at them next. No TTL: members leave when their generation ends or expires.</summary>
    public static RedisKey Pending => $"{Prefix}pending";

    /// <summary>Pub/sub: a generation id is published here when it ends, to every replica.</summary>
    public static RedisChannel Ended => RedisChannel.Literal($"{Prefix}ended");
}
