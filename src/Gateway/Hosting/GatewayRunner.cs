using Microsoft.Extensions.Options;

namespace Gateway.Hosting;

internal static class GatewayRunner
{
    /// <summary>
    /// Runs the gateway; a configuration that fails validation ends the process with exit code 1 and one
    /// line per bad setting (each names its environment variable) instead of a stack trace.
    /// </summary>
    public static int RunGateway(this WebApplication app)
    {
        try
        {
            app.Run();
            return 0;
        }
        catch (Exception e) when (Failures(e).ToList() is { Count: > 0 } failures)
        {
            Console.Error.WriteLine("The gateway cannot start: its configuration is not valid.");
            foreach (var failure in failures.Distinct())
            {
                Console.Error.WriteLine("  - " + failure);
            }

            return 1;
        }
    }

    private static IEnumerable<string> Failures(Exception exception) => exception switch
    {
        OptionsValidationException invalid => invalid.Failures,
        AggregateException aggregate => aggregate.InnerExceptions.SelectMany(Failures),
        _ => [],
    };
}
