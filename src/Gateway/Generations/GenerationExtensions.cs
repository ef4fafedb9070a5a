using Gateway.Storage;

namespace Gateway.Generations;

internal static class GenerationExtensions
{
    public static IHostApplicationBuilder AddGenerations(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<RequestCoalescer>();
        builder.Services.AddScoped<GenerationService>();
        if (builder.UsesRedis())
        {
            builder.Services.AddSingleton<IGenerationHistory, RedisGenerationHistory>();
        }
        else
        {
            builder.Services.AddSingleton<IGenerationHistory, InMemoryGenerationHistory>();
        }

        builder.Services.AddSingleton<IGenerationListener, HistoryGenerationListener>();
        return builder;
    }
}
