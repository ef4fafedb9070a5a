using Gateway.Storage;

namespace Gateway.Clients;

/// <summary>Which limits a decision found exceeded.</summary>
[Flags]
public enum LimitKind
{
    None = 0,
    RequestsPerMinute = 1,
    ImagesPerDay = 2,
    DailyBudget = 4,
    Concurrent = 8,
    UserRequestsPerMinute = 16,
    UserImagesPerDay = 32,
}

/// <summary>
/// One client's effective limits; spend in micro-USD so counters stay integers. The per-user limits (null: none)
/// apply to each signed-in user of the client, on top of the client's.
/// </summary>
internal sealed record ClientPolicy(
    int RequestsPerMinute, int ImagesPerDay, int MaxConcurrent, long? DailyBudgetMicros, long PricePerImageMicros,
    int? UserRequestsPerMinute = null, int? UserImagesPerDay = null)
{
    public const decimal MicrosPerUsd = 1_000_000m;

    public static long ToMicros(decimal usd) => (long)Math.Round(usd * MicrosPerUsd, MidpointRounding.AwayFromZero);

    public static decimal ToUsd(long micros) => micros / MicrosPerUsd;
}

/// <summary>The windows a moment falls in: the clock minute and the UTC day; for a signed-in user, that user's counters too.</summary>
internal sealed record LimitWindows(string Client, long Minute, string Day, DateTimeOffset Now, string? User = null)
{
    public static LimitWindows At(Owner owner, DateTimeOffset now) =>
        new(owner.Client, now.ToUnixTimeSeconds() / 60, now.UtcDateTime.ToString("yyyyMMdd", System.Globalization.CultureInfo.InvariantCulture), now, owner.User);

    public int SecondsToMinuteEnd => Math.Max(1, (int)Math.Ceiling(((Minute + 1) * 60_000 - Now.ToUnixTimeMilliseconds()) / 1000.0));

    public int SecondsToDayEnd => Math.Max(1, (int)Math.Ceiling((Now.UtcDateTime.Date.AddDays(1) - Now.UtcDateTime).TotalSeconds));
}

/// <summary>A client's counters (and its user's, for a signed-in user) as one atomic check saw them (after its own increment when allowed).</summary>
internal sealed record LimitCounts(
    LimitKind Exceeded, long MinuteSubmits, long DaySubmits, long DayImages, long DaySpendMicros, long InFlight,
    long UserMinuteSubmits = 0, long UserDaySubmits = 0, long UserDayImages = 0);

/// <summary>Where counters live: one Lua script per operation on Redis (exact across replicas), or a lock in memory.</summary>
internal interface ILimitStore
{
    /// <summary>Checks every limit and, only when all allow, counts the submit and takes a concurrency slot named <paramref name="leaseMember"/>.</summary>
    Task<LimitCounts> TryAcquireAsync(LimitWindows windows, ClientPolicy policy, int images, string leaseMember, TimeSpan leaseTtl);

    /// <summary>Gives back what an acquire counted (the submit never reached fal, or fal refused it).</summary>
    Task ReleaseAsync(LimitWindows windows, int images, long costMicros, string leaseMember);

    /// <summary>Renames the slot after the generation, so its end can free it.</summary>
    Task CommitAsync(LimitWindows windows, string leaseMember, string generationMember, TimeSpan leaseTtl);

    Task EndAsync(string client, string generationMember);

    Task<LimitCounts> ReadAsync(LimitWindows windows);

    /// <summary>The slot members currently held (expired ones dropped).</summary>
    Task<IReadOnlyList<string>> InFlightAsync(LimitWindows windows);
}

internal sealed class RedisLimitStore(RedisConnection redis) : ILimitStore
{
    private static readonly TimeSpan MinuteKeyTtl = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan DayKeyTtl = TimeSpan.FromDays(2);

    // Reads every counter, drops lapsed slots, and increments only when nothing is exceeded: one atomic step. A signed-in
    // user's counters (same {client} hash slot) are checked and counted in the same step; a limit of -1 is no limit.
    private static readonly StackExchange.Redis.LuaScript AcquireScript = StackExchange.Redis.LuaScript.Prepare("""
        local hasUser = tonumber(@hasUser) == 1
        local uMinute, uSubmits, uImages = 0, 0, 0
        if hasUser then
          uMinute = tonumber(redis.call('GET', @userMinuteKey) or '0')
          uSubmits = tonumber(redis.call('GET', @userSubmitsKey) or '0')
          uImages = tonumber(redis.call('GET', @userImagesKey) or '0')
        end
        local minute = tonumber(redis.call('GET', @minuteKey) or '0')
        local submits = tonumber(redis.call('GET', @submitsKey) or '0')
        local images = tonumber(redis.call('GET', @imagesKey) or '0')
        local spend = tonumber(redis.call('GET', @spendKey) or '0')
        redis.call('ZREMRANGEBYSCORE', @inflightKey, '-inf', @nowMs)
        local inflight = redis.call('ZCARD', @inflightKey)
        local n = tonumber(@images)
        local cost = tonumber(@cost)
        local budget = tonumber(@budget)
        local exceeded = 0
        if minute + 1 > tonumber(@rpm) then exceeded = exceeded + 1 end
        if images + n > tonumber(@imagesPerDay) then exceeded = exceeded + 2 end
        if budget >= 0 and spend + cost > budget then exceeded = exceeded + 4 end
        if inflight + 1 > tonumber(@maxConcurrent) then exceeded = exceeded + 8 end
        local userRpm = tonumber(@userRpm)
        local userImagesPerDay = tonumber(@userImagesPerDay)
        if hasUser and userRpm >= 0 and uMinute + 1 > userRpm then exceeded = exceeded + 16 end
        if hasUser and userImagesPerDay >= 0 and uImages + n > userImagesPerDay then exceeded = exceeded + 32 end
        if exceeded > 0 then return { exceeded, minute, submits, images, spend, inflight, uMinute, uSubmits, uImages } end
        if hasUser then
          uMinute = redis.call('INCR', @userMinuteKey)
          redis.call('PEXPIRE', @userMinuteKey, @minuteTtl)
          uSubmits = redis.call('INCR', @userSubmitsKey)
          redis.call('PEXPIRE', @userSubmitsKey, @dayTtl)
          uImages = redis.call('INCRBY', @userImagesKey, n)
          redis.call('PEXPIRE', @userImagesKey, @dayTtl)
        end
        minute = redis.call('INCR', @minuteKey)
        redis.call('PEXPIRE', @minuteKey, @minuteTtl)
        submits = redis.call('INCR', @submitsKey)
        redis.call('PEXPIRE', @submitsKey, @dayTtl)
        images = redis.call('INCRBY', @imagesKey, n)
        redis.call('PEXPIRE', @imagesKey, @dayTtl)
        spend = redis.call('INCRBY', @spendKey, cost)
        redis.call('PEXPIRE', @spendKey, @dayTtl)
        redis.call('ZADD', @inflightKey, @leaseExpiry, @lease)
        redis.call('PEXPIRE', @inflightKey, @leaseTtl)
        return { 0, minute, submits, images, spend, inflight + 1, uMinute, uSubmits, uImages }
        """);

    // Counters of a window that has already expired are left alone: there is nothing to give back to.
    private static readonly StackExchange.Redis.LuaScript ReleaseScript = StackExchange.Redis.LuaScript.Prepare("""
        local function giveBack(key, amount)
          local v = tonumber(redis.call('GET', key) or '0')
          if v > 0 then redis.call('DECRBY', key, math.min(v, amount)) end
        end
        giveBack(@minuteKey, 1)
        giveBack(@submitsKey, 1)
        giveBack(@imagesKey, tonumber(@images))
        giveBack(@spendKey, tonumber(@cost))
        if tonumber(@hasUser) == 1 then
          giveBack(@userMinuteKey, 1)
          giveBack(@userSubmitsKey, 1)
          giveBack(@userImagesKey, tonumber(@images))
        end
        redis.call('ZREM', @inflightKey, @lease)
        return 1
        """);

    private static readonly StackExchange.Redis.LuaScript CommitScript = StackExchange.Redis.LuaScript.Prepare("""
        redis.call('ZREM', @inflightKey, @lease)
        redis.call('ZADD', @inflightKey, @leaseExpiry, @generation)
        redis.call('PEXPIRE', @inflightKey, @leaseTtl)
        return 1
        """);

    private static readonly StackExchange.Redis.LuaScript ReadScript = StackExchange.Redis.LuaScript.Prepare("""
        redis.call('ZREMRANGEBYSCORE', @inflightKey, '-inf', @nowMs)
        local hasUser = tonumber(@hasUser) == 1
        return { 0,
          tonumber(redis.call('GET', @minuteKey) or '0'),
          tonumber(redis.call('GET', @submitsKey) or '0'),
          tonumber(redis.call('GET', @imagesKey) or '0'),
          tonumber(redis.call('GET', @spendKey) or '0'),
          redis.call('ZCARD', @inflightKey),
          hasUser and tonumber(redis.call('GET', @userMinuteKey) or '0') or 0,
          hasUser and tonumber(redis.call('GET', @userSubmitsKey) or '0') or 0,
          hasUser and tonumber(redis.call('GET', @userImagesKey) or '0') or 0 }
        """);

    private StackExchange.Redis.IDatabase Db => redis.Database;

    public async Task<LimitCounts> TryAcquireAsync(LimitWindows windows, ClientPolicy policy, int images, string leaseMember, TimeSpan leaseTtl)
    {
        var result = await AcquireScript.EvaluateAsync(Db, new
        {
            minuteKey = RedisKeys.SubmitsInMinute(windows.Client, windows.Minute),
            submitsKey = RedisKeys.SubmitsOnDay(windows.Client, windows.Day),
            imagesKey = RedisKeys.ImagesOnDay(windows.Client, windows.Day),
            spendKey = RedisKeys.SpendOnDay(windows.Client, windows.Day),
            inflightKey = RedisKeys.InFlight(windows.Client),
            nowMs = windows.Now.ToUnixTimeMilliseconds(),
            images,
            cost = images * policy.PricePerImageMicros,
            budget = policy.DailyBudgetMicros ?? -1,
            rpm = policy.RequestsPerMinute,
            imagesPerDay = policy.ImagesPerDay,
            maxConcurrent = policy.MaxConcurrent,
            minuteTtl = (long)MinuteKeyTtl.TotalMilliseconds,
            dayTtl = (long)DayKeyTtl.TotalMilliseconds,
            leaseExpiry = (windows.Now + leaseTtl).ToUnixTimeMilliseconds(),
            lease = (StackExchange.Redis.RedisValue)leaseMember,
            leaseTtl = (long)leaseTtl.TotalMilliseconds,
            hasUser = windows.User is null ? 0 : 1,
            userMinuteKey = RedisKeys.UserSubmitsInMinute(windows.Client, windows.User ?? "", windows.Minute),
            userSubmitsKey = RedisKeys.UserSubmitsOnDay(windows.Client, windows.User ?? "", windows.Day),
            userImagesKey = RedisKeys.UserImagesOnDay(windows.Client, windows.User ?? "", windows.Day),
            userRpm = policy.UserRequestsPerMinute ?? -1,
            userImagesPerDay = policy.UserImagesPerDay ?? -1,
        });
        return ToCounts(result);
    }

    public Task ReleaseAsync(LimitWindows windows, int images, long costMicros, string leaseMember) =>
        ReleaseScript.EvaluateAsync(Db, new
        {
            minuteKey = RedisKeys.SubmitsInMinute(windows.Client, windows.Minute),
            submitsKey = RedisKeys.SubmitsOnDay(windows.Client, windows.Day),
            imagesKey = RedisKeys.ImagesOnDay(windows.Client, windows.Day),
            spendKey = RedisKeys.SpendOnDay(windows.Client, windows.Day),
            inflightKey = RedisKeys.InFlight(windows.Client),
            images,
            cost = costMicros,
            lease = (StackExchange.Redis.RedisValue)leaseMember,
            hasUser = windows.User is null ? 0 : 1,
            userMinuteKey = RedisKeys.UserSubmitsInMinute(windows.Client, windows.User ?? "", windows.Minute),
            userSubmitsKey = RedisKeys.UserSubmitsOnDay(windows.Client, windows.User ?? "", windows.Day),
            userImagesKey = RedisKeys.UserImagesOnDay(windows.Client, windows.User ?? "", windows.Day),
        });

    public Task CommitAsync(LimitWindows windows, string leaseMember, string generationMember, TimeSpan leaseTtl) =>
        CommitScript.EvaluateAsync(Db, new
        {
            inflightKey = RedisKeys.InFlight(windows.Client),
            lease = (StackExchange.Redis.RedisValue)leaseMember,
            generation = (StackExchange.Redis.RedisValue)generationMember,
            leaseExpiry = (windows.Now + leaseTtl).ToUnixTimeMilliseconds(),
            leaseTtl = (long)leaseTtl.TotalMilliseconds,
        });

    public Task EndAsync(string client, string generationMember) =>
        Db.SortedSetRemoveAsync(RedisKeys.InFlight(client), generationMember);

    public async Task<LimitCounts> ReadAsync(LimitWindows windows) =>
        ToCounts(await ReadScript.EvaluateAsync(Db, new
        {
            minuteKey = RedisKeys.SubmitsInMinute(windows.Client, windows.Minute),
            submitsKey = RedisKeys.SubmitsOnDay(windows.Client, windows.Day),
            imagesKey = RedisKeys.ImagesOnDay(windows.Client, windows.Day),
            spendKey = RedisKeys.SpendOnDay(windows.Client, windows.Day),
            inflightKey = RedisKeys.InFlight(windows.Client),
            nowMs = windows.Now.ToUnixTimeMilliseconds(),
            hasUser = windows.User is null ? 0 : 1,
            userMinuteKey = RedisKeys.UserSubmitsInMinute(windows.Client, windows.User ?? "", windows.Minute),
            userSubmitsKey = RedisKeys.UserSubmitsOnDay(windows.Client, windows.User ?? "", windows.Day),
            userImagesKey = RedisKeys.UserImagesOnDay(windows.Client, windows.User ?? "", windows.Day),
        }));

    public async Task<IReadOnlyList<string>> InFlightAsync(LimitWindows windows)
    {
        var members = await Db.SortedSetRangeByScoreAsync(
            RedisKeys.InFlight(windows.Client), windows.Now.ToUnixTimeMilliseconds(), double.PositiveInfinity, StackExchange.Redis.Exclude.Start);
        return [.. members.Select(m => m.ToString())];
    }

    private static LimitCounts ToCounts(StackExchange.Redis.RedisResult result)
    {
        var values = (long[])result!;
        return new LimitCounts((LimitKind)values[0], values[1], values[2], values[3], values[4], values[5], values[6], values[7], values[8]);
    }
}

/// <summary>The counters when no Redis is configured (one replica only): the same rules under one lock.</summary>
internal sealed class InMemoryLimitStore : ILimitStore
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, long> _counters = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Dictionary<string, DateTimeOffset>> _inFlight = new(StringComparer.Ordinal);
    private string _currentMinute = "";

    public Task<LimitCounts> TryAcquireAsync(LimitWindows windows, ClientPolicy policy, int images, string leaseMember, TimeSpan leaseTtl)
    {
        lock (_gate)
        {
            ForgetOldWindows(windows);
            var counts = Read(windows);
            var cost = images * policy.PricePerImageMicros;
            var exceeded = LimitKind.None;
            if (counts.MinuteSubmits + 1 > policy.RequestsPerMinute) exceeded |= LimitKind.RequestsPerMinute;
            if (counts.DayImages + images > policy.ImagesPerDay) exceeded |= LimitKind.ImagesPerDay;
            if (policy.DailyBudgetMicros is { } budget && counts.DaySpendMicros + cost > budget) exceeded |= LimitKind.DailyBudget;
            if (counts.InFlight + 1 > policy.MaxConcurrent) exceeded |= LimitKind.Concurrent;
            if (windows.User is not null && counts.UserMinuteSubmits + 1 > policy.UserRequestsPerMinute) exceeded |= LimitKind.UserRequestsPerMinute;
            if (windows.User is not null && counts.UserDayImages + images > policy.UserImagesPerDay) exceeded |= LimitKind.UserImagesPerDay;
            if (exceeded != LimitKind.None)
            {
                return Task.FromResult(counts with { Exceeded = exceeded });
            }

            Add(MinuteKey(windows), 1);
            Add(DayKey(windows, "submits"), 1);
            Add(DayKey(windows, "images"), images);
            Add(DayKey(windows, "spend"), cost);
            AddForUser(windows, 1, images);
            Slots(windows.Client)[leaseMember] = windows.Now + leaseTtl;
            return Task.FromResult(Read(windows));
        }
    }

    public Task ReleaseAsync(LimitWindows windows, int images, long costMicros, string leaseMember)
    {
        lock (_gate)
        {
            Add(MinuteKey(windows), -1);
            Add(DayKey(windows, "submits"), -1);
            Add(DayKey(windows, "images"), -images);
            Add(DayKey(windows, "spend"), -costMicros);
            AddForUser(windows, -1, -images);
            Slots(windows.Client).Remove(leaseMember);
        }

        return Task.CompletedTask;
    }

    public Task CommitAsync(LimitWindows windows, string leaseMember, string generationMember, TimeSpan leaseTtl)
    {
        lock (_gate)
        {
            var slots = Slots(windows.Client);
            slots.Remove(leaseMember);
            slots[generationMember] = windows.Now + leaseTtl;
        }

        return Task.CompletedTask;
    }

    public Task EndAsync(string client, string generationMember)
    {
        lock (_gate)
        {
            Slots(client).Remove(generationMember);
        }

        return Task.CompletedTask;
    }

    public Task<LimitCounts> ReadAsync(LimitWindows windows)
    {
        lock (_gate)
        {
            return Task.FromResult(Read(windows));
        }
    }

    public Task<IReadOnlyList<string>> InFlightAsync(LimitWindows windows)
    {
        lock (_gate)
        {
            Read(windows);
            return Task.FromResult<IReadOnlyList<string>>([.. Slots(windows.Client).Keys]);
        }
    }

    private LimitCounts Read(LimitWindows windows)
    {
        var slots = Slots(windows.Client);
        foreach (var (member, expires) in slots.ToList())
        {
            if (expires <= windows.Now)
            {
                slots.Remove(member);
            }
        }

        return new LimitCounts(
            LimitKind.None,
            _counters.GetValueOrDefault(MinuteKey(windows)),
            _counters.GetValueOrDefault(DayKey(windows, "submits")),
            _counters.GetValueOrDefault(DayKey(windows, "images")),
            _counters.GetValueOrDefault(DayKey(windows, "spend")),
            slots.Count,
            windows.User is null ? 0 : _counters.GetValueOrDefault(UserMinuteKey(windows)),
            windows.User is null ? 0 : _counters.GetValueOrDefault(UserDayKey(windows, "submits")),
            windows.User is null ? 0 : _counters.GetValueOrDefault(UserDayKey(windows, "images")));
    }

    private void AddForUser(LimitWindows windows, int submits, int images)
    {
        if (windows.User is not null)
        {
            Add(UserMinuteKey(windows), submits);
            Add(UserDayKey(windows, "submits"), submits);
            Add(UserDayKey(windows, "images"), images);
        }
    }

    /// <summary>Keeps only the current minute's and the current and previous day's counters.</summary>
    private void ForgetOldWindows(LimitWindows windows)
    {
        var minute = windows.Minute.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (minute == _currentMinute)
        {
            return;
        }

        _currentMinute = minute;
        var yesterday = windows.Now.UtcDateTime.AddDays(-1).ToString("yyyyMMdd", System.Globalization.CultureInfo.InvariantCulture);
        foreach (var key in _counters.Keys.ToList())
        {
            var window = key[(key.LastIndexOf(':') + 1)..];
            if (key.StartsWith("rpm:", StringComparison.Ordinal) ? window != minute : window != windows.Day && window != yesterday)
            {
                _counters.Remove(key);
            }
        }
    }

    private void Add(string key, long amount) => _counters[key] = Math.Max(0, _counters.GetValueOrDefault(key) + amount);

    private Dictionary<string, DateTimeOffset> Slots(string client) =>
        _inFlight.TryGetValue(client, out var slots) ? slots : _inFlight[client] = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);

    private static string MinuteKey(LimitWindows windows) => $"rpm:{windows.Client}:{windows.Minute}";

    private static string DayKey(LimitWindows windows, string counter) => $"{counter}:{windows.Client}:{windows.Day}";

    // Client names hold no colon (it separates configuration sections) and the user part is escaped: no owner can pass for another.
    private static string UserMinuteKey(LimitWindows windows) => $"rpm:{windows.Client}:user:{Uri.EscapeDataString(windows.User!)}:{windows.Minute}";

    private static string UserDayKey(LimitWindows windows, string counter) => $"{counter}:{windows.Client}:user:{Uri.EscapeDataString(windows.User!)}:{windows.Day}";
}
