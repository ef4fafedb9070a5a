using NSec.Cryptography;

namespace Gateway.Tests.Infrastructure;

/// <summary>Webhook tests: a loopback JWKS server publishing one real Ed25519 key the test signs with.</summary>
public abstract class JwksTestBase : IAsyncLifetime
{
    protected TestJwksServer Jwks { get; private set; } = null!;

    protected Key SigningKey { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Jwks = await TestJwksServer.StartAsync();
        SigningKey = TestJwksServer.NewKey();
        Jwks.Publish(SigningKey);
    }

    public async ValueTask DisposeAsync()
    {
        await Jwks.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
