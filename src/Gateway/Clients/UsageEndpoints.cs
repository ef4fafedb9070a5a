using System.Globalization;
using System.Security.Claims;
using System.Text.Json.Serialization;
using Gateway.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Gateway.Clients;

/// <summary>The caller's usage today (UTC) and each limit with what remains.</summary>
/// <param name="Client">The client the key belongs to.</param>
/// <param name="Date">The UTC day the counters are for.</param>
/// <param name="Submits">Submits accepted today.</param>
/// <param name="Images">Images requested today (num_images summed).</param>
/// <param name="EstimatedSpendUsd">Images today times the configured price per image.</param>
/// <param name="PricePerImageUsd">The price per image the estimate uses.</param>
/// <param name="Limits">Each limit: its size, what is used, what remains and when it resets.</param>
/// <param name="User">The signed-in user's own figures beside the client's; absent when the caller used the client's key.</param>
public sealed record UsageResponse(
    string Client,
    string Date,
    long Submits,
    long Images,
    decimal EstimatedSpendUsd,
    decimal PricePerImageUsd,
    UsageLimits Limits,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] UserUsage? User = null);

/// <summary>One signed-in user's usage today (UTC), within the client's.</summary>
/// <param name="Id">The user (the token's oid, else sub).</param>
/// <param name="Submits">The user's submits accepted today.</param>
/// <param name="Images">The user's images requested today.</param>
/// <param name="EstimatedSpendUsd">The user's images today times the price per image.</param>
/// <param name="Limits">The client's per-user limits; each is null when the client sets none.</param>
public sealed record UserUsage(string Id, long Submits, long Images, decimal EstimatedSpendUsd, UserLimits Limits);

/// <summary>Limits each user of the client has on their own (Clients__{name}__PerUser__…); null: none.</summary>
public sealed record UserLimits(WindowUsage? RequestsPerMinute, WindowUsage? ImagesPerDay);

/// <summary>Each of the caller's limits; DailyBudgetUsd is null when the client has no budget.</summary>
public sealed record UsageLimits(WindowUsage RequestsPerMinute, WindowUsage ImagesPerDay, ConcurrencyUsage MaxConcurrent, BudgetUsage? DailyBudgetUsd);

/// <summary>A windowed limit; ResetSeconds is when the window ends and Used starts again from 0.</summary>
public sealed record WindowUsage(long Limit, long Used, long Remaining, int ResetSeconds);

/// <summary>Generations submitted and not yet ended, against the limit.</summary>
public sealed record ConcurrencyUsage(long Limit, long InFlight, long Remaining);

public sealed record BudgetUsage(decimal Limit, decimal Spent, decimal Remaining, int ResetSeconds);

internal static class UsageEndpoints
{
    public static RouteGroupBuilder MapUsage(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").RequireAuthorization().WithTags("Usage");
        group.MapGet("/usage", GetUsage)
            .WithName(nameof(GetUsage))
            .WithSummary("The caller's usage and limits today")
            .DescribesResponse(StatusCodes.Status200OK, "Today's usage (UTC) and each limit with what remains.")
            .ProducesProblemFor(StatusCodes.Status503ServiceUnavailable, "The counters cannot be read (Redis is unreachable); Retry-After says when to try again.")
            .WithResponseHeader("Retry-After", "Seconds to wait before trying again.", [StatusCodes.Status503ServiceUnavailable], integer: true, example: "2");
        return group;
    }

    public static async Task<Ok<UsageResponse>> GetUsage(ClaimsPrincipal user, ClientLimiter limiter)
    {
        var (policy, windows, counts) = await limiter.ReadAsync(user.Owner());
        BudgetUsage? budget = policy.DailyBudgetMicros is { } micros
            ? new BudgetUsage(ClientPolicy.ToUsd(micros), ClientPolicy.ToUsd(counts.DaySpendMicros),
                ClientPolicy.ToUsd(Math.Max(0, micros - counts.DaySpendMicros)), windows.SecondsToDayEnd)
            : null;
        return TypedResults.Ok(new UsageResponse(
            windows.Client,
            windows.Now.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            counts.DaySubmits,
            counts.DayImages,
            ClientPolicy.ToUsd(counts.DaySpendMicros),
            limiter.PricePerImageUsd,
            new UsageLimits(
                new WindowUsage(policy.RequestsPerMinute, counts.MinuteSubmits, Math.Max(0, policy.RequestsPerMinute - counts.MinuteSubmits), windows.SecondsToMinuteEnd),
                new WindowUsage(policy.ImagesPerDay, counts.DayImages, Math.Max(0, policy.ImagesPerDay - counts.DayImages), windows.SecondsToDayEnd),
                new ConcurrencyUsage(policy.MaxConcurrent, counts.InFlight, Math.Max(0, policy.MaxConcurrent - counts.InFlight)),
                budget),
            windows.User is { } id ? UserFigures(id, policy, windows, counts, limiter.PricePerImageUsd) : null));
    }

    private static UserUsage UserFigures(string id, ClientPolicy policy, LimitWindows windows, LimitCounts counts, decimal pricePerImage) => new(
        id,
        counts.UserDaySubmits,
        counts.UserDayImages,
        counts.UserDayImages * pricePerImage,
        new UserLimits(
            policy.UserRequestsPerMinute is { } rpm
                ? new WindowUsage(rpm, counts.UserMinuteSubmits, Math.Max(0, rpm - counts.UserMinuteSubmits), windows.SecondsToMinuteEnd)
                : null,
            policy.UserImagesPerDay is { } images
                ? new WindowUsage(images, counts.UserDayImages, Math.Max(0, images - counts.UserDayImages), windows.SecondsToDayEnd)
                : null));
}
