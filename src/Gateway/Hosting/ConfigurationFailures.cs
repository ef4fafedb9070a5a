using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace Gateway.Hosting;

/// <summary>
/// Bad settings as an operator reads them: one line each, naming the environment variable (<c>Gateway__ShutdownTimeout</c>,
/// not the option's member), never a stack trace. Used by the runner, which stops the start with them, and by the
/// readers that bind settings themselves.
/// </summary>
internal static partial class ConfigurationFailures
{
    /// <summary>The lines an exception thrown while the gateway was built or started stands for; empty when it is not a bad setting.</summary>
    public static IEnumerable<string> Of(Exception exception) => exception switch
    {
        OptionsValidationException invalid => invalid.Failures,
        AggregateException aggregate => aggregate.InnerExceptions.SelectMany(Of),
        InvalidOperationException unconvertible when Unconvertible(unconvertible) is { } line => [line],
        _ => [],
    };

    /// <summary>
    /// The binder's "Failed to convert configuration value 'x' at 'A:B' to type 'T'", said with the variable's name. Only
    /// typed values (numbers, durations, switches) fail to convert, never a string, so the value shown is no secret.
    /// </summary>
    public static string? Unconvertible(InvalidOperationException exception)
    {
        var match = ConversionFailure().Match(exception.Message);
        if (!match.Success)
        {
            return null;
        }

        var expected = match.Groups["type"].Value switch
        {
            "System.TimeSpan" => "a duration such as 00:00:30",
            "System.Boolean" => "true or false",
            "System.Int32" or "System.Int64" => "a whole number",
            "System.Decimal" or "System.Double" => "a number such as 0.05",
            var type => "a " + type[(type.LastIndexOf('.') + 1)..],
        };
        return $"{VariableName(match.Groups["path"].Value)}='{match.Groups["value"].Value}' is not {expected}.";
    }

    /// <summary>A configuration path as an environment variable: <c>Gateway:ShutdownTimeout</c> is <c>Gateway__ShutdownTimeout</c>.</summary>
    public static string VariableName(string path) => path.Replace(":", "__", StringComparison.Ordinal);

    [GeneratedRegex(@"^Failed to convert configuration value '(?<value>.*)' at '(?<path>[^']+)' to type '(?<type>[^']+)'", RegexOptions.Singleline)]
    private static partial Regex ConversionFailure();
}

/// <summary>
/// An options class's DataAnnotations, each failure naming its variable (<c>Gateway__ShutdownTimeout: The field ... must be
/// between ...</c>) rather than the stock "DataAnnotation validation failed for 'GatewayOptions' members: 'ShutdownTimeout'".
/// </summary>
internal sealed class NamedDataAnnotations<TOptions>(string sectionName) : IValidateOptions<TOptions>
    where TOptions : class
{
    public ValidateOptionsResult Validate(string? name, TOptions options)
    {
        var results = new List<ValidationResult>();
        if (Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true))
        {
            return ValidateOptionsResult.Success;
        }

        var prefix = ConfigurationFailures.VariableName(sectionName);
        return ValidateOptionsResult.Fail(results.Select(result =>
            result.ErrorMessage is { } message && message.Contains("__", StringComparison.Ordinal)
                ? message // already names its variable
                : $"{prefix}__{string.Join(", ", result.MemberNames)}: {result.ErrorMessage}"));
    }
}
