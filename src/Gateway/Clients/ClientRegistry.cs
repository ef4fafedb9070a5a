using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace Gateway.Clients;

/// <summary>Finds the client a presented key belongs to by its SHA-256, compared in constant time.</summary>
internal sealed class ClientRegistry
{
    public const string DevelopmentClientName = "local";

    private readonly (string Name, byte[] Hash)[] _clients;
    private readonly Dictionary<string, string> _clientsByApp;

    public ClientRegistry(IOptions<ClientsOptions> clients, IOptions<DevelopmentClientOptions> development, IHostEnvironment environment, ILogger<ClientRegistry> logger)
    {
        _clients = clients.Value.Clients
            .Where(c => c.Value.KeySha256 is not null)
            .Select(c => (c.Key, Convert.FromHexString(c.Value.KeySha256!)))
            .ToArray();
        _clientsByApp = clients.Value.Clients
            .SelectMany(c => c.Value.AppIds.Select(app => (App: app, Client: c.Key)))
            .ToDictionary(a => a.App, a => a.Client, StringComparer.Ordinal);
        if (clients.Value.Clients.Count == 0 && environment.IsDevelopment())
        {
            logger.LogWarning("No clients are configured: Development accepts the documented local key as client '{Client}'.", DevelopmentClientName);
            _clients = [(DevelopmentClientName, Hash(development.Value.DevelopmentClientKey))];
        }
    }

    public string? FindClient(string presentedKey)
    {
        var hash = Hash(presentedKey);
        string? found = null;
        foreach (var (name, expected) in _clients)
        {
            // Every entry is compared, so the time taken does not tell which (or whether one) matched.
            if (CryptographicOperations.FixedTimeEquals(hash, expected))
            {
                found = name;
            }
        }

        return found;
    }

    /// <summary>The client an identity provider's app acts for (<c>Clients:{name}:AppIds</c>), or null when it is none.</summary>
    public string? FindClientByApp(string appId) => _clientsByApp.GetValueOrDefault(appId);

    private static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));
}
