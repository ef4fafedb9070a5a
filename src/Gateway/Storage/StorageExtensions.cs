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

    /// <summary>Redis when <c>ConnectionStrings:Redis</c> is set, else the in-memory store (one replica only).</summary>
    public static IHostApplicationBuilder AddGenerationStore(this IHostApplicationBuilder builder)
    {
        var connectionString = builder.Configuration.GetConnectionString(RedisConnectionName);
        if (!builder.UsesRedis())
        {
            builder.Services.AddSingleton<IGenerationStore, InMemoryGenerationStore>();
            builder.Services.AddHostedService<InMemoryStoreAnnouncement>();
        }
        else
        {
            var redisOptions = RedisConnection.Options(connectionString!);
            builder.Services.AddSingleton<IConnectionMultiplexer>(_ => ConnectionMultiplexer.Connect(redisOptions));
            builder.Services.AddSingleton<RedisConnection>();
            builder.Services.AddHostedService(services => services.GetRequiredService<RedisConnection>());
            builder.Services.AddSingleton<IGenerationStore, RedisGenerationStore>();
        }

        builder.Services.AddHealthChecks().AddCheck<StoreHealthCheck>("store", tags: ["ready"]);
        builder.Services.AddSingleton<IProblemMapper, StoreProblemMapper>();
        return builder;
    }

    private sealed class StoreHealthCheck(IGenerationStore store) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            await store.IsHealthyAsync(cancellationToken)
                ? HealthCheckResult.Healthy(store.IsShared ? "Redis is reachable." : "In-memory store (one replica only).")
                : HealthCheckResult.Unhealthy("Redis is not reachable.");
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
