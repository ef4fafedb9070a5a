using System.Security.Cryptography;
using NSec.Cryptography;

namespace FalEmulator;

/// <summary>The Ed25519 keys webhooks are signed with; the newest signs, the JWKS lists the ones kept.</summary>
internal sealed class SigningKeys : IDisposable
{
    private readonly Lock _gate = new();
    private readonly List<NSec.Cryptography.Key> _keys = [];

    public SigningKeys() => _keys.Add(NewKey());

    public void Rotate(bool keepOld)
    {
        var fresh = NewKey();
        lock (_gate)
        {
            if (!keepOld)
            {
                foreach (var key in _keys)
                {
                    key.Dispose();
                }

                _keys.Clear();
            }

            _keys.Insert(0, fresh);
        }
    }

    public byte[] Sign(ReadOnlySpan<byte> message)
    {
        lock (_gate)
        {
            return SignatureAlgorithm.Ed25519.Sign(_keys[0], message);
        }
    }

    public JwksDocument Jwks()
    {
        lock (_gate)
        {
            return new JwksDocument([.. _keys.Select(k =>
            {
                var raw = k.PublicKey.Export(KeyBlobFormat.RawPublicKey);
                return new Jwk("OKP", "Ed25519", Base64Url(raw), Convert.ToHexStringLower(SHA256.HashData(raw))[..16], "sig", "EdDSA");
            })]);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var key in _keys)
            {
                key.Dispose();
            }

            _keys.Clear();
        }
    }

    private static NSec.Cryptography.Key NewKey() => NSec.Cryptography.Key.Create(SignatureAlgorithm.Ed25519);

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
