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
        var (candidate, unconvertible) = Bind(configuration.GetSection(ClientsOptions.SectionName));
        var result = validator.Validate(Options.DefaultName, candidate);
        if (unconvertible.Count > 0)
        {
            result = ValidateOptionsResult.Fail([.. unconvertible, .. result.Failures ?? []]);
        }

        lock (_lock)
        {
            if (unconvertible.Count > 0 && _lastGood is null)
            {
                // At start: the validator would only see the clients that did convert, and say "no clients".
                throw new OptionsValidationException(Options.DefaultName, typeof(ClientsOptions), unconvertible);
            }

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

    /// <summary>
    /// Each client on its own: binding the whole dictionary drops a client whose value does not convert
    /// (<c>RequestsPerMinute=banana</c>) without a word, and the start would then fail on "no clients".
    /// </summary>
    private static (ClientsOptions Candidate, List<string> Unconvertible) Bind(IConfigurationSection section)
    {
        var candidate = new ClientsOptions();
        var unconvertible = new List<string>();
        foreach (var child in section.GetChildren())
        {
            var client = new ClientOptions();
            try
            {
                child.Bind(client);
                candidate.Clients[child.Key] = client;
            }
            catch (InvalidOperationException e) when (Hosting.ConfigurationFailures.Unconvertible(e) is { } failure)
            {
                unconvertible.Add(failure);
            }
        }

        return (candidate, unconvertible);
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
