using System.Globalization;
using Gateway.Storage;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Gateway.Clients;

/// <summary>The client's limits could not be checked (Redis unreachable): nothing is sent to fal; 503 with Retry-After.</summary>
/// <summary>
/// Whether a generation that holds a concurrency slot has ended or is gone: told by the feature that runs generations,
/// which also tells <see cref="ClientLimiter.EndAsync"/> when one ends.
/// </summary>
internal interface IGenerationEnds
{
    Task<bool> HasEndedAsync(string generationId);
}

internal sealed class ClientLimitsUnavailableException(Exception inner)
    : Exception("The client limits cannot be checked: Redis is not reachable.", inner);

/// <summary>
/// Per-client limits, exact across replicas: submits per minute, images per day, unfinished generations
/// and an optional daily budget. /v1 submits and proxied submits alike spend units through <see cref="RunAsync{T}"/> only:
/// acquire, submit, then commit once fal accepted the job or release when it did not.
/// </summary>
internal sealed partial class ClientLimiter(
    ILimitStore store,
    IGenerationEnds generations,
    IOptionsMonitor<LimitsOptions> limits,
    IOptionsMonitor<ClientsOptions> clients,
    ClientMetrics metrics,
    TimeProvider time,
    ILogger<ClientLimiter> logger)
{
    private const string LeasePrefix = "lease:";
    private const string GenerationPrefix = "gen:";

    private async Task<LimitDecision> TryAcquireAsync(Owner owner, int numImages)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(numImages, 1);
        var client = owner.Client;
        var policy = PolicyFor(client);
        var windows = LimitWindows.At(owner, time.GetUtcNow());
        var leaseMember = LeasePrefix + Guid.NewGuid().ToString("N");
        var leaseTtl = limits.CurrentValue.ConcurrencyLeaseTtl;
        var counts = await Guarded(() => store.TryAcquireAsync(windows, policy, numImages, leaseMember, leaseTtl));
        if (counts.Exceeded.HasFlag(LimitKind.Concurrent) && await ReconcileAsync(windows) > 0)
        {
            counts = await Guarded(() => store.TryAcquireAsync(windows, policy, numImages, leaseMember, leaseTtl));
        }

        metrics.Counted(client, windows.Day, policy, counts);
        if (counts.Exceeded != LimitKind.None)
        {
            metrics.Refused(client, counts.Exceeded);
            LogRefused(logger, client, counts.Exceeded, numImages);
            return new LimitDecision(policy, windows, counts, null);
        }

        var lease = new LimitLease(this, windows, numImages, numImages * policy.PricePerImageMicros, leaseMember);
        return new LimitDecision(policy, windows, counts, lease);
    }

    /// <summary>
    /// The one way a submit spends limit units: acquires them (writing the RateLimit headers), runs
    /// <paramref name="submit"/> unless refused, and settles the units from its outcome: committed when fal took the job,
    /// given back when fal refused it (or <paramref name="givesBack"/> says nothing reached fal), kept when fal may have it.
    /// </summary>
    /// <returns>The decision, and the submit's outcome (default when the limits refused it).</returns>
    public async Task<(LimitDecision Decision, T? Outcome)> RunAsync<T>(
        Owner owner, int numImages, IHeaderDictionary headers, Func<Task<T>> submit, Func<T, LimitSettlement> settle, Func<Exception, bool> givesBack)
    {
        var decision = await TryAcquireAsync(owner, numImages);
        decision.WriteHeaders(headers);
        if (decision.Lease is not { } lease)
        {
            return (decision, default);
        }

        T outcome;
        try
        {
            outcome = await submit();
        }
        catch (Exception e) when (givesBack(e))
        {
            await lease.ReleaseAsync();
            throw;
        }

        var settlement = settle(outcome);
        switch (settlement.Kind)
        {
            case LimitSettlementKind.Commit:
                await lease.CommitAsync(settlement.GenerationId);
                break;
            case LimitSettlementKind.Release:
                await lease.ReleaseAsync();
                break;
            default:
                break; // fal may have taken the job without answering: its units stay spent
        }

        return (decision, outcome);
    }

    /// <summary>Today's counters and this client's limits (and the user's, for a signed-in user), without counting anything.</summary>
    public async Task<(ClientPolicy Policy, LimitWindows Windows, LimitCounts Counts)> ReadAsync(Owner owner)
    {
        var windows = LimitWindows.At(owner, time.GetUtcNow());
        return (PolicyFor(owner.Client), windows, await Guarded(() => store.ReadAsync(windows)));
    }

    public decimal PricePerImageUsd => limits.CurrentValue.PricePerImageUsd;

    /// <summary>Frees the slot of a generation that ended (told once per generation by the store's one writer).</summary>
    public async Task EndAsync(string client, string generationId)
    {
        try
        {
            await store.EndAsync(client, GenerationPrefix + generationId);
        }
        catch (Exception e) when (RedisFailure.IsUnavailable(e))
        {
            // The reader of the job must not fail for this: reconciliation or the lease TTL frees the slot later.
            LogEndNotRecorded(logger, e, client, generationId);
        }
    }

    internal ClientPolicy PolicyFor(string client)
    {
        var defaults = limits.CurrentValue;
        var own = clients.CurrentValue.Clients.GetValueOrDefault(client);
        var budget = own?.DailyBudgetUsd ?? defaults.DailyBudgetUsd;
        return new ClientPolicy(
            own?.RequestsPerMinute ?? defaults.RequestsPerMinute,
            own?.ImagesPerDay ?? defaults.ImagesPerDay,
            own?.MaxConcurrent ?? defaults.MaxConcurrent,
            budget is { } usd ? ClientPolicy.ToMicros(usd) : null,
            ClientPolicy.ToMicros(defaults.PricePerImageUsd),
            own?.PerUser.RequestsPerMinute,
            own?.PerUser.ImagesPerDay);
    }

    internal async Task CommitAsync(LimitLease lease, string? generationId)
    {
        if (generationId is null)
        {
            await Guarded(() => store.EndAsync(lease.Windows.Client, lease.Member)); // ended already (fal.run): counted, no slot held
        }
        else
        {
            await Guarded(() => store.CommitAsync(lease.Windows, lease.Member, GenerationPrefix + generationId, limits.CurrentValue.ConcurrencyLeaseTtl));
        }

        metrics.Accepted(lease.Windows.Client, lease.Images, ClientPolicy.ToUsd(lease.CostMicros));
    }

    internal Task ReleaseAsync(LimitLease lease)
    {
        LogReleased(logger, lease.Windows.Client, lease.Images);
        return Guarded(() => store.ReleaseAsync(lease.Windows, lease.Images, lease.CostMicros, lease.Member));
    }

    /// <summary>
    /// A slot whose end was never told (the replica died after storing, or a webhook raced the commit) is
    /// freed here when the store already shows the generation ended or gone. Runs only when a client is at
    /// its concurrency limit, so it costs nothing in the common case; the lease TTL is the last resort.
    /// </summary>
    private async Task<int> ReconcileAsync(LimitWindows windows)
    {
        var freed = 0;
        foreach (var member in await Guarded(() => store.InFlightAsync(windows)))
        {
            if (!member.StartsWith(GenerationPrefix, StringComparison.Ordinal))
            {
                continue; // a submit still on its way to fal
            }

            if (await Guarded(() => generations.HasEndedAsync(member[GenerationPrefix.Length..])))
            {
                await Guarded(() => store.EndAsync(windows.Client, member));
                freed++;
            }
        }

        if (freed > 0)
        {
            LogReconciled(logger, windows.Client, freed);
        }

        return freed;
    }

    private static async Task<T> Guarded<T>(Func<Task<T>> action)
    {
        try
        {
            return await action();
        }
        catch (Exception e) when (RedisFailure.IsUnavailable(e))
        {
            throw new ClientLimitsUnavailableException(e);
        }
    }

    private static async Task Guarded(Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (Exception e) when (RedisFailure.IsUnavailable(e))
        {
            throw new ClientLimitsUnavailableException(e);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Refused a submit of {NumImages} images for {Client}: {Exceeded} exceeded")]
    private static partial void LogRefused(ILogger logger, string client, LimitKind exceeded, int numImages);

    [LoggerMessage(Level = LogLevel.Information, Message = "Gave back the limit units of a failed submit of {NumImages} images for {Client}")]
    private static partial void LogReleased(ILogger logger, string client, int numImages);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not free the concurrency slot of {Client}'s generation {GenerationId}")]
    private static partial void LogEndNotRecorded(ILogger logger, Exception exception, string client, string generationId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Freed {Count} concurrency slots of {Client} whose generations had ended unnoticed")]
    private static partial void LogReconciled(ILogger logger, string client, int count);
}

internal enum LimitSettlementKind
{
    /// <summary>fal may have taken the job without saying so: the units stay spent, the slot lapses with its lease.</summary>
    Keep,
    Commit,
    Release,
}

/// <summary>How a submit's units are settled: committed (to a generation still running, or to none when it already ended), released or kept.</summary>
internal readonly record struct LimitSettlement(LimitSettlementKind Kind, string? GenerationId = null)
{
    public static LimitSettlement Keep => new(LimitSettlementKind.Keep);

    public static LimitSettlement Release => new(LimitSettlementKind.Release);

    /// <summary>fal took the job: its units count; <paramref name="generationId"/> holds a slot until it ends (null: it has ended).</summary>
    public static LimitSettlement Commit(string? generationId) => new(LimitSettlementKind.Commit, generationId);
}

/// <summary>What a submit took from the limits: commit it once fal accepted the job, release it when fal did not.</summary>
internal sealed class LimitLease(ClientLimiter limiter, LimitWindows windows, int images, long costMicros, string member)
{
    private int _settled;

    public LimitWindows Windows => windows;

    public int Images => images;

    public long CostMicros => costMicros;

    public string Member => member;

    public Task CommitAsync(string? generationId) =>
        Interlocked.Exchange(ref _settled, 1) == 0 ? limiter.CommitAsync(this, generationId) : Task.CompletedTask;

    public Task ReleaseAsync() =>
        Interlocked.Exchange(ref _settled, 1) == 0 ? limiter.ReleaseAsync(this) : Task.CompletedTask;
}

/// <summary>A limit decision and the IETF RateLimit-Policy / RateLimit header values that describe it.</summary>
internal sealed class LimitDecision(ClientPolicy policy, LimitWindows windows, LimitCounts counts, LimitLease? lease)
{
    public const string PolicyHeaderName = "RateLimit-Policy";
    public const string HeaderName = "RateLimit";

    public bool Allowed => lease is not null;

    public LimitLease? Lease => lease;

    public LimitKind Exceeded => counts.Exceeded;

    /// <summary>When a refused submit may succeed: the end of the latest window that refused it.</summary>
    public int RetryAfterSeconds =>
        Math.Max(
            Math.Max((Exceeded & (LimitKind.RequestsPerMinute | LimitKind.UserRequestsPerMinute)) != 0 ? windows.SecondsToMinuteEnd : 0,
                (Exceeded & (LimitKind.ImagesPerDay | LimitKind.DailyBudget | LimitKind.UserImagesPerDay)) != 0 ? windows.SecondsToDayEnd : 0),
            Exceeded.HasFlag(LimitKind.Concurrent) ? 1 : 0);

    /// <summary>The per-user limits that apply to this caller: a signed-in user of a client that has them.</summary>
    private int? UserMinuteLimit => windows.User is null ? null : policy.UserRequestsPerMinute;

    private int? UserDayLimit => windows.User is null ? null : policy.UserImagesPerDay;

    /// <summary>
    /// <c>"minute"</c> counts submits per clock minute, <c>"day"</c> images per UTC day, <c>"concurrent"</c> unfinished
    /// generations; <c>"user-minute"</c> and <c>"user-day"</c> the same for the signed-in user, where the client has per-user limits.
    /// </summary>
    public string PolicyHeader => string.Create(CultureInfo.InvariantCulture,
        $"\"minute\";q={policy.RequestsPerMinute};w=60, \"day\";q={policy.ImagesPerDay};w=86400, \"concurrent\";q={policy.MaxConcurrent};qu=\"concurrent-requests\"")
        + (UserMinuteLimit is { } userMinute ? string.Create(CultureInfo.InvariantCulture, $", \"user-minute\";q={userMinute};w=60") : "")
        + (UserDayLimit is { } userDay ? string.Create(CultureInfo.InvariantCulture, $", \"user-day\";q={userDay};w=86400") : "");

    public string RateLimitHeader => string.Create(CultureInfo.InvariantCulture,
        $"\"minute\";r={Math.Max(0, policy.RequestsPerMinute - counts.MinuteSubmits)};t={windows.SecondsToMinuteEnd}, "
        + $"\"day\";r={Math.Max(0, policy.ImagesPerDay - counts.DayImages)};t={windows.SecondsToDayEnd}, "
        + $"\"concurrent\";r={Math.Max(0, policy.MaxConcurrent - counts.InFlight)}")
        + (UserMinuteLimit is { } userMinute
            ? string.Create(CultureInfo.InvariantCulture, $", \"user-minute\";r={Math.Max(0, userMinute - counts.UserMinuteSubmits)};t={windows.SecondsToMinuteEnd}") : "")
        + (UserDayLimit is { } userDay
            ? string.Create(CultureInfo.InvariantCulture, $", \"user-day\";r={Math.Max(0, userDay - counts.UserDayImages)};t={windows.SecondsToDayEnd}") : "");

    public void WriteHeaders(IHeaderDictionary headers)
    {
        headers[PolicyHeaderName] = PolicyHeader;
        headers[HeaderName] = RateLimitHeader;
        if (!Allowed)
        {
            headers.RetryAfter = RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
        }
    }

    /// <summary>The refusal as the detail of a 429 problem, naming each exceeded limit.</summary>
    public string RefusalDetail()
    {
        var reasons = new List<string>();
        if (Exceeded.HasFlag(LimitKind.RequestsPerMinute))
        {
            reasons.Add($"{policy.RequestsPerMinute} submits per minute");
        }

        if (Exceeded.HasFlag(LimitKind.ImagesPerDay))
        {
            reasons.Add($"{policy.ImagesPerDay} images per day ({counts.DayImages} used)");
        }

        if (Exceeded.HasFlag(LimitKind.DailyBudget))
        {
            reasons.Add(string.Create(CultureInfo.InvariantCulture,
                $"a daily budget of ${ClientPolicy.ToUsd(policy.DailyBudgetMicros ?? 0):0.00##} (${ClientPolicy.ToUsd(counts.DaySpendMicros):0.00##} spent)"));
        }

        if (Exceeded.HasFlag(LimitKind.Concurrent))
        {
            reasons.Add($"{policy.MaxConcurrent} unfinished generations at once");
        }

        var userReasons = new List<string>();
        if (Exceeded.HasFlag(LimitKind.UserRequestsPerMinute))
        {
            userReasons.Add($"{policy.UserRequestsPerMinute} submits per minute");
        }

        if (Exceeded.HasFlag(LimitKind.UserImagesPerDay))
        {
            userReasons.Add($"{policy.UserImagesPerDay} images per day ({counts.UserDayImages} used)");
        }

        var limits = string.Join("; ", new[]
        {
            reasons.Count > 0 ? $"This client's limit of {string.Join(" and ", reasons)} is reached" : null,
            userReasons.Count > 0 ? $"Your limit (per user) of {string.Join(" and ", userReasons)} is reached" : null,
        }.OfType<string>());
        return $"{limits}; nothing was sent to fal. Retry after {RetryAfterSeconds} s.";
    }

    /// <summary>The exceeded limits by their setting names (snake_case), for the problem's <c>limits</c> member.</summary>
    public IReadOnlyList<string> ExceededNames() =>
    [
        .. new (LimitKind Kind, string Name)[]
        {
            (LimitKind.RequestsPerMinute, "requests_per_minute"),
            (LimitKind.ImagesPerDay, "images_per_day"),
            (LimitKind.DailyBudget, "daily_budget_usd"),
            (LimitKind.Concurrent, "max_concurrent"),
            (LimitKind.UserRequestsPerMinute, "per_user.requests_per_minute"),
            (LimitKind.UserImagesPerDay, "per_user.images_per_day"),
        }.Where(p => Exceeded.HasFlag(p.Kind)).Select(p => p.Name),
    ];
}
