using Serilog.Core;
using Serilog.Events;

namespace Gateway.Hosting;

/// <summary>A query parameter whose value is a credential (a feature registers its own with <see cref="SecretQueryParameterExtensions.AddSecretQueryParameter"/>).</summary>
internal sealed record SecretQueryParameter(string Name);

/// <summary>
/// Keeps credentials that ride in a URL's query out of every log line (ASP.NET Core's request lines log the query
/// at Information) and off the traces' <c>url.query</c>, at every level, whatever the logging or tracing settings.
/// </summary>
internal sealed class SecretQueryParameters(IEnumerable<SecretQueryParameter> parameters) : ILogEventEnricher
{
    public const string Redacted = "Redacted";

    private readonly string[] _names = [.. parameters.Select(p => p.Name)];

    /// <summary><paramref name="query"/> (with or without its <c>?</c>) with the value of every secret parameter replaced.</summary>
    public string Redact(string query)
    {
        if (_names.Length == 0 || query.Length == 0)
        {
            return query;
        }

        var leading = query.StartsWith('?') ? "?" : "";
        var pairs = query[leading.Length..].Split('&');
        for (var i = 0; i < pairs.Length; i++)
        {
            var name = Uri.UnescapeDataString(pairs[i].Split('=', 2)[0].Replace('+', ' '));
            if (_names.Contains(name, StringComparer.OrdinalIgnoreCase))
            {
                pairs[i] = pairs[i].Split('=', 2)[0] + "=" + Redacted;
            }
        }

        return leading + string.Join('&', pairs);
    }

    /// <summary>ASP.NET Core's "Request starting/finished" events carry the query as <c>QueryString</c>; the message renders from it.</summary>
    public void Enrich(LogEvent logEvent, ILogEventPropertyFactory propertyFactory)
    {
        if (logEvent.Properties.TryGetValue("QueryString", out var value) && value is ScalarValue { Value: string { Length: > 0 } query })
        {
            var redacted = Redact(query);
            if (!ReferenceEquals(redacted, query) && redacted != query)
            {
                logEvent.AddOrUpdateProperty(new LogEventProperty("QueryString", new ScalarValue(redacted)));
            }
        }
    }
}

internal static class SecretQueryParameterExtensions
{
    /// <summary>The value of query parameter <paramref name="name"/> is a credential: never logged, never traced.</summary>
    public static IServiceCollection AddSecretQueryParameter(this IServiceCollection services, string name) =>
        services.AddSingleton(new SecretQueryParameter(name));
}
