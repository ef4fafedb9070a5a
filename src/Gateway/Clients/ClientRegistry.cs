using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace Gateway.Clients;

/// <summary>Finds the client a presented key belongs to by its SHA-256, compared in constant time.</summary>
internal sealed class ClientRegistry
{
    public const string DevelopmentClientName = "local";

    private readonly (string Name, byte[] Hash)[] _clients;

    public ClientRegistry(IOptions<ClientsOptions> clients, IOptions<DevelopmentClientOptions> development, IHostEnvironment environment, ILogger<ClientRegistry> logger)
    {
        _clients = clients.Value.Clients
            .Select(c => (c.Key, Convert.FromHexString(c.Value.KeySha256!)))
            .ToArray();
        if (_clients.Length == 0 && environment.IsDevelopment())
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

    private static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));
}
