using System.ComponentModel.DataAnnotations;

namespace Gateway.Clients;

/// <summary>Every client's limits unless <c>Clients:{name}</c> overrides them (section <c>Limits</c>).</summary>
public sealed class LimitsOptions
{
    public const string SectionName = "Limits";

    /// <summary>Submits accepted per clock minute (UTC).</summary>
    [Range(1, 1_000_000)]
    public int RequestsPerMinute { get; set; } = 60;

    /// <summary>Images (the sum of num_images) accepted per UTC day.</summary>
    [Range(1, 1_000_000_000)]
    public int ImagesPerDay { get; set; } = 1_000;

    /// <summary>Generations submitted and not yet ended, at once.</summary>
    [Range(1, 1_000_000)]
    public int MaxConcurrent { get; set; } = 10;

    /// <summary>Estimated spend allowed per UTC day; empty: no budget.</summary>
    [Range(0.0, 1_000_000_000.0)]
    public decimal? DailyBudgetUsd { get; set; }

    /// <summary>What one image is estimated to cost, for the budget, /v1/usage and the spend metric.</summary>
    [Range(0.0, 1_000.0)]
    public decimal PricePerImageUsd { get; set; } = 0.05m;

    /// <summary>
    /// The longest a generation holds a concurrency slot when its end is never observed (a replica died
    /// between fal's answer and the store, or nobody ever read the job): the slot then lapses by itself.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:10", "1.00:00:00")]
    public TimeSpan ConcurrencyLeaseTtl { get; set; } = TimeSpan.FromMinutes(15);
}

/// <summary>How Idempotency-Key answers are kept (section <c>Idempotency</c>).</summary>
public sealed class IdempotencyOptions
{
    public const string SectionName = "Idempotency";

    /// <summary>How long a successful answer is replayed for the same key.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "30.00:00:00")]
    public TimeSpan Ttl { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How long a first attempt may stay in flight before its key is free again (a replica that died mid-submit).</summary>
    [Range(typeof(TimeSpan), "00:00:05", "01:00:00")]
    public TimeSpan InFlightTtl { get; set; } = TimeSpan.FromMinutes(1);
}
