namespace Gateway.Hosting;

/// <summary>
/// Instruments whose label values are known before the first event (outcomes, reasons, configured clients). A
/// counter's series appears on /metrics only once it has been added to: until then an alert on
/// <c>increase(x{outcome="failed"}[30m])</c> sees nothing, and the first failure is no increase at all. So each set
/// is added to with 0 when the gateway starts.
/// </summary>
internal interface IMetricSeriesAtZero
{
    void CreateAtZero();
}

/// <summary>Runs after OpenTelemetry's own hosted service (registered before it), so the meter provider is listening.</summary>
internal sealed class MetricSeriesAtStart(IEnumerable<IMetricSeriesAtZero> instruments) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var instrument in instruments)
        {
            instrument.CreateAtZero();
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

internal static class MetricSeriesAtZeroExtensions
{
    /// <summary>Registers <typeparamref name="T"/> once, as itself and as one of the instruments created at zero at start.</summary>
    public static IServiceCollection AddMetricsAtZero<T>(this IServiceCollection services) where T : class, IMetricSeriesAtZero =>
        services.AddSingleton<T>().AddSingleton<IMetricSeriesAtZero>(provider => provider.GetRequiredService<T>());
}
