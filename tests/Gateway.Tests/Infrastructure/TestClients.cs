using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Tests.Infrastructure;

/// <summary>
/// A client of its own for one test (its Redis counters, idempotency keys and history start empty even
/// though every test shares one Redis), with the limits the test names.
/// </summary>
public sealed class TestClient
{
    public TestClient(params (string Setting, string Value)[] limits)
    {
        Name = "t" + Guid.NewGuid().ToString("N")[..12];
        Key = "key-" + Guid.NewGuid().ToString("N");
        Settings = new Dictionary<string, string?> { [$"Clients:{Name}:KeySha256"] = GatewayHarness.Sha256(Key) };
        foreach (var (setting, value) in limits)
        {
            Settings[$"Clients:{Name}:{setting}"] = value;
        }
    }

    public string Name { get; }

    public string Key { get; }

    public Dictionary<string, string?> Settings { get; }

    /// <summary>These settings plus <paramref name="more"/>.</summary>
    public Dictionary<string, string?> With(params (string Key, string? Value)[] more)
    {
        var all = new Dictionary<string, string?>(Settings);
        foreach (var (key, value) in more)
        {
            all[key] = value;
        }

        return all;
    }
}

public static class FakeTime
{
    /// <summary>A clock every replica shares; moved by the test, never by itself.</summary>
    public static FakeTimeProvider At(string utc) => new(DateTimeOffset.Parse(utc, System.Globalization.CultureInfo.InvariantCulture));

    public static Action<IServiceCollection> Use(TimeProvider time) =>
        services => services.AddSingleton(time);
}
