using Gateway.Hosting;
using Gateway.Storage;

namespace Gateway.Clients;

internal static class LimitsExtensions
{
    /// <summary>Per-client limits, usage and Idempotency-Key: in Redis when it is configured, else in memory (one replica).</summary>
    public static IHostApplicationBuilder AddClientLimits(this IHostApplicationBuilder builder)
    {
        builder.Services.AddValidatedOptions<LimitsOptions>(LimitsOptions.SectionName);
        builder.Services.AddValidatedOptions<IdempotencyOptions>(IdempotencyOptions.SectionName);

        if (builder.UsesRedis())
        {
            builder.Services.AddSingleton<ILimitStore, RedisLimitStore>();
            builder.Services.AddSingleton<IIdempotencyStore, RedisIdempotencyStore>();
        }
        else
        {
            builder.Services.AddSingleton<ILimitStore, InMemoryLimitStore>();
            builder.Services.AddSingleton<IIdempotencyStore, InMemoryIdempotencyStore>();
        }

        builder.Services.AddMetrics();
        builder.Services.AddMetricsAtZero<ClientMetrics>();
        builder.Services.AddSingleton<ClientLimiter>();
        builder.Services.AddSingleton<IProblemMapper, LimitProblems>();
        builder.Services.AddGatewayJson(ClientJsonContext.Default);
        return builder;
    }

    /// <summary>After authentication: Idempotency-Key is kept per client.</summary>
    public static WebApplication UseIdempotency(this WebApplication app)
    {
        app.UseMiddleware<IdempotencyMiddleware>();
        return app;
    }

    /// <summary>The route's POSTs honour <c>Idempotency-Key</c>: the header, the replay marker and the key's refusals.</summary>
    public static RouteHandlerBuilder WithIdempotency(this RouteHandlerBuilder builder, params int[] successStatuses) => builder
        .WithMetadata(IdempotentEndpointMetadata.Instance)
        .WithRequestHeader(IdempotencyMiddleware.HeaderName,
            "Makes a retry safe: the same key with the same body (per client, for a day) replays the first successful answer and never submits twice.",
            example: "\"3f2b7c1e-submit-42\"", maxLength: 257)
        .WithResponseHeader(IdempotencyMiddleware.ReplayedHeaderName, "true when this answer is the replay of the first one for this Idempotency-Key.",
            successStatuses, example: "true")
        .ProducesProblemFor(StatusCodes.Status400BadRequest, "The Idempotency-Key is not valid (errors names it).")
        .ProducesProblemFor(StatusCodes.Status409Conflict,
            "The first request with this Idempotency-Key is still being submitted; repeat it after Retry-After to get its answer.")
        .WithResponseHeader("Retry-After", "Seconds to wait before trying again.", [StatusCodes.Status409Conflict], integer: true, example: "1")
        .ProducesProblemFor(StatusCodes.Status422UnprocessableEntity, "This Idempotency-Key was first sent with a different body (or route).");

    /// <summary>The IETF RateLimit headers a submit carries, and the 429 of a client limit.</summary>
    public static RouteHandlerBuilder WithClientLimits(this RouteHandlerBuilder builder, params int[] successStatuses) => builder
        .WithRateLimitHeaders([.. successStatuses, StatusCodes.Status429TooManyRequests])
        .ProducesProblemFor(StatusCodes.Status429TooManyRequests,
            "A client limit refused the submit before anything reached fal: limits names it, retry_after_seconds (and Retry-After) says when to try again.")
        .ProducesProblemFor(StatusCodes.Status503ServiceUnavailable, "The client limits cannot be checked (Redis is unreachable); nothing was sent to fal.");

    /// <summary>
    /// The headers a limited submit answers with (<paramref name="statuses"/>: every answer that can follow the limit check):
    /// the IETF RateLimit-Policy and RateLimit, and Retry-After on a 429.
    /// </summary>
    public static RouteHandlerBuilder WithRateLimitHeaders(this RouteHandlerBuilder builder, params int[] statuses) => builder
        .WithResponseHeader(LimitDecision.PolicyHeaderName,
            "The client's limits (draft-ietf-httpapi-ratelimit-headers): submits per minute, images per day, concurrent generations.",
            statuses, example: "\"minute\";q=60;w=60, \"day\";q=1000;w=86400, \"concurrent\";q=10;qu=\"concurrent-requests\"")
        .WithResponseHeader(LimitDecision.HeaderName, "What remains of each limit and when its window resets (absent on an Idempotency-Key replay).",
            statuses, example: "\"minute\";r=59;t=42, \"day\";r=999;t=3600, \"concurrent\";r=9")
        .WithResponseHeader("Retry-After", "Seconds to wait before trying again.", [StatusCodes.Status429TooManyRequests], integer: true, example: "17");
}
