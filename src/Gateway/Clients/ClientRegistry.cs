using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Gateway.Clients;

/// <summary>
/// Finds the client a presented key belongs to by its SHA-256, compared in constant time. Any of a client's key
/// hashes authenticates it (rotation); the table follows <see cref="IOptionsMonitor{TOptions}"/>, so keys added or
/// removed at run time (Gateway__SecretsPath) count from the next request on.
/// </summary>
internal sealed class ClientRegistry
{
    public const string DevelopmentClientName = "local";

    private readonly IOptionsMonitor<ClientsOptions> _clients;
    private readonly byte[]? _developmentHash;
    private readonly ConcurrentDictionary<string, AuthenticationTicket> _tickets = new(StringComparer.Ordinal);
    private volatile Snapshot _snapshot;

    public ClientRegistry(IOptionsMonitor<ClientsOptions> clients, IOptions<DevelopmentClientOptions> development, IHostEnvironment environment, ILogger<ClientRegistry> logger)
    {
        _clients = clients;
        if (environment.IsDevelopment())
        {
            _developmentHash = Hash(development.Value.DevelopmentClientKey);
        }

        _snapshot = Build(clients.CurrentValue);
        if (_snapshot.UsesDevelopmentKey)
        {
            logger.LogWarning("No clients are configured: Development accepts the documented local key as client '{Client}'.", DevelopmentClientName);
        }
    }

    public string? FindClient(string presentedKey)
    {
        var snapshot = Current();
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        Hash(presentedKey, hash);
        string? found = null;
        foreach (var (name, expected) in snapshot.Entries)
        {
            // Every entry is compared, so the time taken does not tell which (or whether one) matched.
            if (CryptographicOperations.FixedTimeEquals(hash, expected))
            {
                found = name;
            }
        }

        return found;
    }

    /// <summary>
    /// The ticket of a client that presented its key: one per client name (names come only from the configuration),
    /// built on its first request and shared by the requests after it, which only read it. A poll then allocates no
    /// principal, identity, claims or properties of its own (issue 13).
    /// </summary>
    public AuthenticationTicket TicketFor(string client) => _tickets.GetOrAdd(client, static name =>
        new AuthenticationTicket(CallerClaims.Create(new Owner(name, null), ClientKeyAuthenticationHandler.SchemeName), ClientKeyAuthenticationHandler.SchemeName));

    /// <summary>The client an identity provider's app acts for (<c>Clients:{name}:AppIds</c>), or null when it is none.</summary>
    public string? FindClientByApp(string appId) => Current().ClientsByApp.GetValueOrDefault(appId);

    private Snapshot Current()
    {
        var options = _clients.CurrentValue;
        var snapshot = _snapshot;
        if (!ReferenceEquals(snapshot.Source, options))
        {
            _snapshot = snapshot = Build(options);
        }

        return snapshot;
    }

    private Snapshot Build(ClientsOptions options)
    {
        (string Name, byte[] Hash)[] entries =
        [
            .. options.Clients.SelectMany(c => c.Value.KeyHashes(c.Key).Select(k => (c.Key, Convert.FromHexString(k.Hash!)))),
        ];
        var byApp = options.Clients
            .SelectMany(c => c.Value.AppIds.Select(app => (App: app, Client: c.Key)))
            .DistinctBy(a => a.App, StringComparer.Ordinal) // the validator refuses an app of two clients; never throw here
            .ToDictionary(a => a.App, a => a.Client, StringComparer.Ordinal);
        return options.Clients.Count == 0 && _developmentHash is not null
            ? new Snapshot(options, [(DevelopmentClientName, _developmentHash)], byApp, UsesDevelopmentKey: true)
            : new Snapshot(options, entries, byApp, UsesDevelopmentKey: false);
    }

    private static byte[] Hash(string key)
    {
        var hash = new byte[SHA256.HashSizeInBytes];
        Hash(key, hash);
        return hash;
    }

    /// <summary>Hashes on the stack: a request's key costs no heap bytes (issue 13). A long one, which no client has, is encoded on the heap.</summary>
    private static void Hash(string key, Span<byte> destination)
    {
        const int StackBytes = 256;
        var maximum = Encoding.UTF8.GetMaxByteCount(key.Length);
        Span<byte> encoded = maximum <= StackBytes ? stackalloc byte[StackBytes] : new byte[maximum];
        var length = Encoding.UTF8.GetBytes(key, encoded);
        SHA256.HashData(encoded[..length], destination);
    }

    private sealed record Snapshot(
        ClientsOptions Source, (string Name, byte[] Hash)[] Entries, Dictionary<string, string> ClientsByApp, bool UsesDevelopmentKey);
}
