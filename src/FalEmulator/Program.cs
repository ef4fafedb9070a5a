using FalEmulator;
using Microsoft.Extensions.Configuration;

// Standalone: dotnet run --project src/FalEmulator -- --urls http://127.0.0.1:5100
var configuration = new ConfigurationBuilder()
    .SetBasePath(AppContext.BaseDirectory)
    .AddJsonFile("appsettings.json", optional: true)
    .AddEnvironmentVariables()
    .AddCommandLine(args)
    .Build();

var options = configuration.GetSection(FalEmulatorOptions.SectionName).Get<FalEmulatorOptions>() ?? new FalEmulatorOptions();
var url = configuration["urls"]?.Split(';')[0] ?? "http://127.0.0.1:5100";

await using var host = await FalEmulatorHost.StartAsync(options, url);
Console.WriteLine($"fal stand-in for microsoft/mai-image-2.5 listening on {host.BaseUrl}");
Console.WriteLine($"  queue {host.QueueBaseUrl}  run {host.RunBaseUrl}  rest {host.RestBaseUrl}  jwks {host.JwksUrl}");
Console.WriteLine("  control: GET /_emulator/stats, POST|DELETE /_emulator/faults, POST /_emulator/reset. Ctrl+C stops.");

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};
AppDomain.CurrentDomain.ProcessExit += (_, _) => stop.Cancel();

try
{
    await Task.Delay(Timeout.Infinite, stop.Token);
}
catch (OperationCanceledException)
{
    // Ctrl+C or SIGTERM
}
