namespace Gateway.Hosting;

internal static class GatewayRunner
{
    /// <summary>
    /// Builds and runs the gateway. A bad setting, whether read while the services are registered, while the host is
    /// built (HostOptions, Kestrel, Serilog) or when it starts (every validated option), ends the process with exit
    /// code 1 and one line per bad setting, each naming its environment variable, instead of a stack trace (exit 134).
    /// </summary>
    public static int Run(string[] args, Action<WebApplicationBuilder> addFeatures, Action<WebApplication> useFeatures)
    {
        try
        {
            var builder = WebApplication.CreateSlimBuilder(args);
            builder.WebHost.UseKestrelHttpsConfiguration();
            addFeatures(builder);
            var app = builder.Build();
            useFeatures(app);
            app.Run();
            return 0;
        }
        catch (Exception e) when (ConfigurationFailures.Of(e).ToList() is { Count: > 0 } failures)
        {
            Console.Error.WriteLine("The gateway cannot start: its configuration is not valid.");
            foreach (var failure in failures.Distinct())
            {
                Console.Error.WriteLine("  - " + failure);
            }

            return 1;
        }
    }
}
