using Gateway.Hosting;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Options;

namespace Gateway.Upstream;

internal static class UpstreamExtensions
{
    public static IHostApplicationBuilder AddFalUpstream(this IHostApplicationBuilder builder)
    {
        builder.AddFalStandIn();

        builder.Services.AddValidatedOptions<FalOptions>(FalOptions.SectionName)
            .Configure<IConfiguration>((options, configuration) =>
            {
                // fal's own clients read FAL_KEY, or FAL_KEY_ID + FAL_KEY_SECRET; so does the gateway.
                if (string.IsNullOrWhiteSpace(options.Key) && string.IsNullOrWhiteSpace(options.KeyId))
                {
                    options.Key = configuration["FAL_KEY"];
                    options.KeyId = configuration["FAL_KEY_ID"];
                    options.KeySecret = configuration["FAL_KEY_SECRET"];
                }
            });
        builder.Services.AddSingleton<IProblemMapper, FalProblemMapper>();
        builder.Services.AddOptions<FalSubmitHeaders>();

        // One FalQueueClient for the process, not one per request: every read of a generation resolves it (through
        // GenerationService), and a typed client costs an HttpClient and a handler lookup each time. A long-lived
        // client is what the HttpClient guidance pairs with SocketsHttpHandler.PooledConnectionLifetime (DNS changes are
        // still seen) and an infinite handler lifetime (the factory never swaps the handler under it).
        builder.Services.AddHttpClient<FalQueueClient>()
            .UseSocketsHttpHandler((handler, _) => handler.PooledConnectionLifetime = TimeSpan.FromMinutes(2))
            .SetHandlerLifetime(Timeout.InfiniteTimeSpan)
            .AddStandardResilienceHandler()
            .Configure((resilience, services) =>
            {
                var fal = services.GetRequiredService<IOptions<FalOptions>>().Value;
                // A submit that may have reached fal is never sent again: it would be billed twice.
                resilience.Retry.DisableForUnsafeHttpMethods();
                resilience.Retry.MaxRetryAttempts = Math.Max(1, fal.MaxReadRetries);
                resilience.Retry.Delay = fal.RetryDelay;
                resilience.Retry.ShouldRetryAfterHeader = true;
                resilience.AttemptTimeout.Timeout = fal.AttemptTimeout;
                resilience.TotalRequestTimeout.Timeout = fal.TotalTimeout;
                resilience.CircuitBreaker.MinimumThroughput = fal.CircuitBreakerMinimumThroughput;
                resilience.CircuitBreaker.SamplingDuration = TimeSpan.FromTicks(Math.Max(
                    resilience.CircuitBreaker.SamplingDuration.Ticks, fal.AttemptTimeout.Ticks * 2));
            });
        builder.Services.AddSingleton(services => ActivatorUtilities.CreateInstance<FalQueueClient>(
            services, services.GetRequiredService<IHttpClientFactory>().CreateClient(nameof(FalQueueClient))));
        return builder;
    }
}
