using StackExchange.Redis;

namespace Gateway.Storage;

/// <summary>
/// Every Redis key the gateway uses, composed here and nowhere else. The generation id is a hash tag
/// (<c>{id}</c>) so a generation's keys share one slot and can change in one transaction on Redis Cluster.
/// TTLs: record, result and images live for <c>Gateway:ResultTtl</c> (so do copies in the image store); leases for seconds.
/// A client's limit, idempotency and history keys carry the client name as their hash tag (<c>{client}</c>),
/// so one Lua script can check and change all of a client's counters atomically on Redis Cluster too.
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

    /// <summary>Completed generations whose images are to be copied to the image store, by when to try next. No TTL: members leave when copied, given up or expired.</summary>
    public static RedisKey ImageCopies => $"{Prefix}images:copies";

    /// <summary>Pub/sub: a generation id is published here when it ends, to every replica.</summary>
    public static RedisChannel Ended => RedisChannel.Literal($"{Prefix}ended");

    /// <summary>Submits accepted in one minute window (<paramref name="minute"/> = Unix seconds / 60); TTL 2 minutes.</summary>
    public static RedisKey SubmitsInMinute(string client, long minute) => $"{Prefix}limit:{{{client}}}:rpm:{minute}";

    /// <summary>Submits accepted on one UTC day (<paramref name="day"/> = yyyyMMdd); TTL 2 days, like the other day counters.</summary>
    public static RedisKey SubmitsOnDay(string client, string day) => $"{Prefix}limit:{{{client}}}:submits:{day}";

    /// <summary>Images (num_images summed) accepted on one UTC day.</summary>
    public static RedisKey ImagesOnDay(string client, string day) => $"{Prefix}limit:{{{client}}}:images:{day}";

    /// <summary>Estimated spend on one UTC day, in micro-USD (integers keep INCRBY exact).</summary>
    public static RedisKey SpendOnDay(string client, string day) => $"{Prefix}limit:{{{client}}}:spend:{day}";

    /// <summary>One signed-in user's submits in one minute window; in the client's hash slot, so one script counts both. TTL 2 minutes.</summary>
    public static RedisKey UserSubmitsInMinute(string client, string user, long minute) => $"{Prefix}limit:{{{client}}}:user:{UserPart(user)}:rpm:{minute}";

    /// <summary>One signed-in user's submits on one UTC day; TTL 2 days.</summary>
    public static RedisKey UserSubmitsOnDay(string client, string user, string day) => $"{Prefix}limit:{{{client}}}:user:{UserPart(user)}:submits:{day}";

    /// <summary>One signed-in user's images on one UTC day; TTL 2 days.</summary>
    public static RedisKey UserImagesOnDay(string client, string user, string day) => $"{Prefix}limit:{{{client}}}:user:{UserPart(user)}:images:{day}";

    /// <summary>
    /// Unfinished generations: a sorted set of members scored by when their slot expires (Limits:ConcurrencyLeaseTtl).
    /// The key's own TTL is that lease TTL, refreshed on every add, so an idle client's set disappears.
    /// </summary>
    public static RedisKey InFlight(string client) => $"{Prefix}limit:{{{client}}}:inflight";

    /// <summary>One Idempotency-Key of one client (the key is hashed: any length, any characters); TTL Idempotency:Ttl.</summary>
    public static RedisKey Idempotency(string client, string keyHash) => $"{Prefix}idem:{{{client}}}:{keyHash}";

    /// <summary>A client's generations by creation time (score: Unix ms); TTL Gateway:ResultTtl, refreshed on every add.</summary>
    public static RedisKey History(string client) => $"{Prefix}hist:{{{client}}}";

    /// <summary>One signed-in user's generations of one client, by creation time; TTL as <see cref="History(string)"/>.</summary>
    public static RedisKey History(string client, string user) => $"{Prefix}hist:{{{client}}}:user:{UserPart(user)}";

    /// <summary>A user id as a key part: escaped, so no id (whatever the identity provider puts in it) can pass for another key.</summary>
    private static string UserPart(string user) => Uri.EscapeDataString(user);
}
