using Gateway.Hosting;
using Microsoft.Extensions.Options;

namespace Gateway.Webhooks;

internal static class WebhookExtensions
{
    public static IHostApplicationBuilder AddFalWebhooks(this IHostApplicationBuilder builder)
    {
        builder.Services.AddValidatedOptions<WebhookOptions>(WebhookOptions.SectionName);
        // No resilience handler: one short attempt per refetch interval, remembered when it fails, is the retry
        // policy (JwksCache). Retries queued behind it would hold webhooks and hammer fal during an outage.
        builder.Services.AddHttpClient(JwksCache.ClientName)
            .ConfigureHttpClient((services, client) =>
                client.Timeout = services.GetRequiredService<IOptions<WebhookOptions>>().Value.JwksFetchTimeout);
        builder.Services.AddSingleton<JwksCache>();
        builder.Services.AddSingleton<FalWebhookVerifier>();
        builder.Services.AddSingleton<WebhookBodyReader>();
        builder.Services.AddMetricsAtZero<WebhookMetrics>();
        builder.Services.AddGatewayJson(WebhookJsonContext.Default);
        return builder;
    }
}
