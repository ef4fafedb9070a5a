using Gateway.Hosting;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using StackExchange.Redis;

namespace Gateway.Storage;

internal static class StorageExtensions
{
    public const string RedisConnectionName = "Redis";

    /// <summary>True when <c>ConnectionStrings:Redis</c> is set: features then keep their state in Redis, else in memory.</summary>
    public static bool UsesRedis(this IHostApplicationBuilder builder) =>
        !string.IsNullOrWhiteSpace(builder.Configuration.GetConnectionString(RedisConnectionName));

    /// <summary>
    /// The Redis connection when <c>ConnectionStrings:Redis</c> is set (the features then keep their state there), else
    /// nothing shared: each feature keeps its state in memory (one replica only). Either way, readiness reports it.
    /// </summary>
    public static IHostApplicationBuilder AddStorage(this IHostApplicationBuilder builder)
    {
        if (!builder.UsesRedis())
        {
            builder.Services.AddHostedService<InMemoryStoreAnnouncement>();
            builder.Services.AddHealthChecks().AddCheck("store", () => HealthCheckResult.Healthy("In-memory store (one replica only)."), tags: ["ready"]);
        }
        else
        {
            var redisOptions = RedisConnection.Options(builder.Configuration.GetConnectionString(RedisConnectionName)!);
            builder.Services.AddSingleton<IConnectionMultiplexer>(_ => ConnectionMultiplexer.Connect(redisOptions));
            builder.Services.AddSingleton<RedisConnection>();
            builder.Services.AddHostedService(services => services.GetRequiredService<RedisConnection>());
            builder.Services.AddHealthChecks().AddCheck<RedisHealthCheck>("store", tags: ["ready"]);
        }

        builder.Services.AddSingleton<IProblemMapper, StoreProblemMapper>();
        return builder;
    }

    private sealed class RedisHealthCheck(RedisConnection redis) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(redis.IsAvailable ? HealthCheckResult.Healthy("Redis is reachable.") : HealthCheckResult.Unhealthy("Redis is not reachable."));
    }

    private sealed class InMemoryStoreAnnouncement(ILogger<InMemoryStoreAnnouncement> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            logger.LogWarning(
                "ConnectionStrings__Redis is empty: generations are kept in memory. Run one replica only; state is lost on restart.");
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
