using Microsoft.Extensions.Options;

namespace Gateway.Clients;

/// <summary>
/// Binds <see cref="ClientsOptions"/> from the <c>Clients</c> section each time the configuration changes (a key file
/// added to or removed from <c>Gateway__SecretsPath</c>), so that <see cref="IOptionsMonitor{TOptions}"/> readers see
/// the change without a restart. A change that does not validate is logged (setting names only, never a value) and
/// the last good clients stay in force; at start there is no last good, and the start fails on it as on any bad setting.
/// </summary>
internal sealed partial class ClientsConfiguration(
    IConfiguration configuration, ClientsOptionsValidator validator, ILogger<ClientsConfiguration> logger) : IConfigureOptions<ClientsOptions>
{
    private readonly Lock _lock = new();
    private ClientsOptions? _lastGood;
    private string? _lastReported;

    public void Configure(ClientsOptions options)
    {
        var candidate = new ClientsOptions();
        configuration.GetSection(ClientsOptions.SectionName).Bind(candidate.Clients);
        var result = validator.Validate(Options.DefaultName, candidate);
        lock (_lock)
        {
            if (result.Succeeded || _lastGood is null)
            {
                _lastGood = result.Succeeded ? candidate : null;
                _lastReported = null;
                CopyTo(candidate, options);
                return;
            }

            // The reload fires more than once for one change: say it once.
            var failures = string.Join(" ", result.Failures ?? []);
            if (failures != _lastReported)
            {
                _lastReported = failures;
                LogRejected(logger, failures);
            }

            CopyTo(_lastGood, options);
        }
    }

    private static void CopyTo(ClientsOptions from, ClientsOptions to)
    {
        to.Clients.Clear();
        foreach (var (name, client) in from.Clients)
        {
            to.Clients[name] = client;
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The changed client settings were not applied, the last good ones stay in force: {Failures}")]
    private static partial void LogRejected(ILogger logger, string failures);
}
