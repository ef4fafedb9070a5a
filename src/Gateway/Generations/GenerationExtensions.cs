using Gateway.Clients;
using Gateway.Hosting;
using Gateway.Storage;

namespace Gateway.Generations;

internal static class GenerationExtensions
{
    public static IHostApplicationBuilder AddGenerations(this IHostApplicationBuilder builder)
    {
        builder.Services.AddValidatedOptions<GenerationOptions>(GenerationOptions.SectionName);
        builder.Services.AddGatewayJson(GenerationJsonContext.Default,
            GenerationJsonContext.Default.GenerateRequest, GenerationJsonContext.Default.EditRequest);
        builder.Services.AddSingleton<RequestCoalescer>();
        builder.Services.AddSingleton<GenerationMapper>();
        builder.Services.AddSingleton<GenerationReadCache>();
        // Stateless, and every dependency a singleton (the fal client too): built once, not on every read's request.
        builder.Services.AddSingleton<GenerationSubmitter>();
        builder.Services.AddSingleton<GenerationCompleter>();
        builder.Services.AddSingleton<GenerationService>();
        builder.Services.AddScoped<GenerationEventStream>();
        builder.Services.AddSingleton<GenerationTicker>();
        builder.Services.AddSingleton<IImageLinks, GatewayImageLinks>();

        // Listeners are told in this order: the slot is free before any waiter hears of the end.
        builder.Services.AddSingleton<IGenerationListener, LimitsGenerationListener>();
        builder.Services.AddSingleton<CompletionHub>();
        builder.Services.AddHostedService(services => services.GetRequiredService<CompletionHub>());
        builder.Services.AddSingleton<IGenerationListener>(services => services.GetRequiredService<CompletionHub>());

        builder.Services.AddSingleton<GenerationReconciler>();
        builder.Services.AddHostedService(services => services.GetRequiredService<GenerationReconciler>());
        builder.Services.AddSingleton<IGenerationListener>(services => services.GetRequiredService<GenerationReconciler>());

        if (builder.UsesRedis())
        {
            builder.Services.AddSingleton<IGenerationStore, RedisGenerationStore>();
            builder.Services.AddSingleton<IGenerationHistory, RedisGenerationHistory>();
        }
        else
        {
            builder.Services.AddSingleton<IGenerationStore, InMemoryGenerationStore>();
            builder.Services.AddSingleton<IGenerationHistory, InMemoryGenerationHistory>();
        }

        builder.Services.AddSingleton<IGenerationListener, HistoryGenerationListener>();
        builder.Services.AddSingleton<IGenerationEnds, GenerationEnds>();
        return builder;
    }
}
