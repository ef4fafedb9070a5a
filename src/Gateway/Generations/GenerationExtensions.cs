namespace Gateway.Generations;

internal static class GenerationExtensions
{
    public static IHostApplicationBuilder AddGenerations(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<RequestCoalescer>();
        builder.Services.AddScoped<GenerationService>();
        return builder;
    }
}
