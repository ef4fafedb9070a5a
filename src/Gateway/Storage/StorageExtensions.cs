using Gateway.Hosting;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using OpenTelemetry.Trace;
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
            // Parsed when the host starts, as a validated option, not here: its failure names ConnectionStrings__Redis
            // without showing the value (it may hold a password), in the one line the runner prints (exit 1).
            builder.Services.AddOptions<RedisConnectionString>()
                .Configure<IConfiguration>((options, configuration) => options.Parse(configuration.GetConnectionString(RedisConnectionName)!))
                .ValidateOnStart();
            builder.Services.AddSingleton<IValidateOptions<RedisConnectionString>, RedisConnectionString.Validator>();
            builder.Services.AddSingleton<IConnectionMultiplexer>(services =>
                ConnectionMultiplexer.Connect(services.GetRequiredService<IOptions<RedisConnectionString>>().Value.Options!));
            builder.Services.AddSingleton<RedisConnection>();
            builder.Services.AddHostedService(services => services.GetRequiredService<RedisConnection>());
            builder.Services.AddHealthChecks().AddCheck<RedisHealthCheck>("store", tags: ["ready"]);
            if (builder.ExportsOtlp())
            {
                // Redis commands are profiled to become spans: worth it only when the spans go somewhere. Commands inside a
                // request or a call to fal; not the replica's own PING every 250 ms and the reconciler's idle look at its
                // schedule, which would bury every trace under root spans.
                builder.Services.ConfigureOpenTelemetryTracerProvider(traces =>
                    traces.AddRedisInstrumentation(options => options.Filter = command => command.ParentActivity is not null));
            }
        }

        builder.Services.AddSingleton<IProblemMapper, StoreProblemMapper>();
        return builder;
    }

    /// <summary><c>ConnectionStrings:Redis</c>, parsed once into the client's options.</summary>
    private sealed class RedisConnectionString
    {
        public ConfigurationOptions? Options { get; private set; }

        /// <summary>Why the connection string cannot be used; names the setting, never shows its value (it may hold a password).</summary>
        public string? Error { get; private set; }

        public void Parse(string connectionString)
        {
            try
            {
                Options = RedisConnection.Options(connectionString);
            }
            catch (InvalidOperationException e)
            {
                Error = e.Message;
            }
        }

        public sealed class Validator : IValidateOptions<RedisConnectionString>
        {
            public ValidateOptionsResult Validate(string? name, RedisConnectionString options) =>
                options.Error is { } error ? ValidateOptionsResult.Fail(error) : ValidateOptionsResult.Success;
        }
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
