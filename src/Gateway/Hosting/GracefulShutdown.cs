using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Gateway.Hosting;

/// <summary>
/// On SIGTERM, the replica keeps serving for <c>Gateway:ShutdownDrainDelay</c> while readiness answers 503,
/// so the load balancer stops sending new work; then Kestrel stops accepting and lets in-flight requests
/// finish (up to <c>Gateway:ShutdownTimeout</c>). Event streams end at once with a retry hint, and waits
/// answer early, so nothing holds the replica open.
/// </summary>
internal sealed partial class GracefulShutdown(IHostApplicationLifetime lifetime, IOptions<GatewayOptions> options, TimeProvider time, ILogger<GracefulShutdown> logger)
    : IHostedLifecycleService, IHealthCheck
{
    public bool Draining => lifetime.ApplicationStopping.IsCancellationRequested;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Runs after ApplicationStopping and before any hosted service (the web server among them) stops.</summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        LogDraining(logger, options.Value.ShutdownDrainDelay);
        try
        {
            await Task.Delay(options.Value.ShutdownDrainDelay, time, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The shutdown timeout ran out first.
        }
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(Draining ? HealthCheckResult.Unhealthy("Shutting down.") : HealthCheckResult.Healthy());

    [LoggerMessage(Level = LogLevel.Information, Message = "Shutting down: readiness is 503; draining for {Delay} before the server stops")]
    private static partial void LogDraining(ILogger logger, TimeSpan delay);
}
