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
        builder.Services.AddSingleton<ClientMetrics>();
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

    public static RouteHandlerBuilder WithIdempotency(this RouteHandlerBuilder builder) =>
        builder.WithMetadata(IdempotentEndpointMetadata.Instance);
}
