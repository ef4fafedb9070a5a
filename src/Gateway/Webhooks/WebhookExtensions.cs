namespace Gateway.Webhooks;

internal static class WebhookExtensions
{
    public static IHostApplicationBuilder AddFalWebhooks(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<WebhookOptions>()
            .BindConfiguration(WebhookOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddHttpClient(JwksCache.ClientName).AddStandardResilienceHandler();
        builder.Services.AddSingleton<JwksCache>();
        builder.Services.AddSingleton<FalWebhookVerifier>();
        return builder;
    }
}
