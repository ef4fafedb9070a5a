using FalEmulator;
using Microsoft.Extensions.Configuration;

// Standalone: dotnet run --project src/FalEmulator -- --urls http://127.0.0.1:5100
// Settings from the "FalEmulator" section: appsettings.json beside the binary, FalEmulator__Key=... or --FalEmulator:Key=...
var configuration = new ConfigurationBuilder()
    .SetBasePath(AppContext.BaseDirectory)
    .AddJsonFile("appsettings.json", optional: true)
    .AddEnvironmentVariables("ASPNETCORE_")
    .AddEnvironmentVariables()
    .AddCommandLine(args)
    .Build();

var options = configuration.GetSection(FalEmulatorOptions.SectionName).Get<FalEmulatorOptions>() ?? new FalEmulatorOptions();
var url = configuration["urls"]?.Split(';')[0] ?? "http://127.0.0.1:5100";

FalEmulatorHost host;
try
{
    host = await FalEmulatorHost.StartAsync(options, url);
}
catch (InvalidOperationException ex)
{
    await Console.Error.WriteLineAsync($"fal stand-in did not start: {ex.Message}");
    return 1;
}

await using (host)
{
    Console.WriteLine($"fal stand-in for microsoft/mai-image-2.5 listening on {host.BaseUrl}");
    Console.WriteLine($"  queue {host.QueueBaseUrl}  run {host.RunBaseUrl}  rest {host.RestBaseUrl}  jwks {host.JwksUrl}");
    Console.WriteLine("  control: GET /_emulator/stats, POST|DELETE /_emulator/faults, POST /_emulator/reset. Ctrl+C stops.");

    using var stop = new CancellationTokenSource();
    using var onInterrupt = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, Stop);
    using var onTerminate = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, Stop);

    void Stop(System.Runtime.InteropServices.PosixSignalContext context)
    {
        context.Cancel = true;
        stop.Cancel();
    }

    try
    {
        await Task.Delay(Timeout.Infinite, stop.Token);
    }
    catch (OperationCanceledException)
    {
        // Ctrl+C or SIGTERM
    }
}

return 0;
