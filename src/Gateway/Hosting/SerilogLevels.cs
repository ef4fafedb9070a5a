using Microsoft.Extensions.Options;
using Serilog.Events;

namespace Gateway.Hosting;

/// <summary>
/// The <c>Serilog</c> section's levels, checked before Serilog reads them: it would throw "The value banana is not a
/// valid Serilog level" without saying which setting, while the host is built, as a crash.
/// </summary>
internal static class SerilogLevels
{
    public static void ThrowIfInvalid(IConfiguration configuration)
    {
        var serilog = configuration.GetSection("Serilog");
        var minimum = serilog.GetSection("MinimumLevel");
        IEnumerable<IConfigurationSection> levels =
        [
            serilog.GetSection("ConsoleMinimumLevel"),
            minimum, // "Serilog:MinimumLevel": "Warning", the short form
            minimum.GetSection("Default"),
            .. minimum.GetSection("Override").GetChildren(),
        ];
        var failures = levels
            .Where(level => level.Value is { Length: > 0 } value && !value.StartsWith('$') && !IsLevel(value)) // "$name": a level switch
            .Select(level => $"{ConfigurationFailures.VariableName(level.Path)}='{level.Value}' is not a log level: "
                + string.Join(", ", Enum.GetNames<LogEventLevel>()) + ".")
            .ToList();
        if (failures.Count > 0)
        {
            throw new OptionsValidationException("Serilog", typeof(SerilogLevels), failures);
        }
    }

    private static bool IsLevel(string value) =>
        Enum.TryParse<LogEventLevel>(value, ignoreCase: true, out var level) && Enum.IsDefined(level);
}
