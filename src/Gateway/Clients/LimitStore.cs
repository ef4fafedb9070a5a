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
}

/// <summary>One client's effective limits; spend in micro-USD so counters stay integers.</summary>
internal sealed record ClientPolicy(int RequestsPerMinute, int ImagesPerDay, int MaxConcurrent, long? DailyBudgetMicros, long PricePerImageMicros)
{
    public const decimal MicrosPerUsd = 1_000_000m;

    public static long ToMicros(decimal usd) => (long)Math.Round(usd * MicrosPerUsd, MidpointRounding.AwayFromZero);

    public static decimal ToUsd(long micros) => micros / MicrosPerUsd;
}

/// <summary>The windows a moment falls in: the clock minute and the UTC day.</summary>
internal sealed record LimitWindows(string Client, long Minute, string Day, DateTimeOffset Now)
{
    public static LimitWindows At(string client, DateTimeOffset now) =>
        new(client, now.ToUnixTimeSeconds() / 60, now.UtcDateTime.ToString("yyyyMMdd", System.Globalization.CultureInfo.InvariantCulture), now);

    public int SecondsToMinuteEnd => Math.Max(1, (int)Math.Ceiling(((Minute + 1) * 60_000 - Now.ToUnixTimeMilliseconds()) / 1000.0));

    public int SecondsToDayEnd => Math.Max(1, (int)Math.Ceiling((Now.UtcDateTime.Date.AddDays(1) - Now.UtcDateTime).TotalSeconds));
}

/// <summary>A client's counters as one atomic check saw them (after its own increment when allowed).</summary>
internal sealed record LimitCounts(LimitKind Exceeded, long MinuteSubmits, long DaySubmits, long DayImages, long DaySpendMicros, long InFlight);

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

    // Reads every counter, drops lapsed slots, and increments only when nothing is exceeded: one atomic step.
    private static readonly StackExchange.Redis.LuaScript AcquireScript = StackExchange.Redis.LuaScript.Prepare("""
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
        if exceeded > 0 then return { exceeded, minute, submits, images, spend, inflight } end
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
        return { 0, minute, submits, images, spend, inflight + 1 }
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
        return { 0,
          tonumber(redis.call('GET', @minuteKey) or '0'),
          tonumber(redis.call('GET', @submitsKey) or '0'),
          tonumber(redis.call('GET', @imagesKey) or '0'),
          tonumber(redis.call('GET', @spendKey) or '0'),
          redis.call('ZCARD', @inflightKey) }
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
        return new LimitCounts((LimitKind)values[0], values[1], values[2], values[3], values[4], values[5]);
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
            if (exceeded != LimitKind.None)
            {
                return Task.FromResult(counts with { Exceeded = exceeded });
            }

            Add(MinuteKey(windows), 1);
            Add(DayKey(windows, "submits"), 1);
            Add(DayKey(windows, "images"), images);
            Add(DayKey(windows, "spend"), cost);
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
            slots.Count);
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
}
