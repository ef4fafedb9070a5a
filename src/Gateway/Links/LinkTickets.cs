using System.Buffers.Binary;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;

namespace Gateway.Links;

/// <summary>One owner's permission to open one resource of one generation without headers.</summary>
/// <param name="GenerationId">The generation the link points into.</param>
/// <param name="Resource">What of it the link opens (<c>events</c>, <c>images</c>); one ticket covers every URL of that resource.</param>
/// <param name="Client">The client that owns the generation.</param>
/// <param name="User">The user of that client who owns it; null when it was submitted with the client's key.</param>
public sealed record LinkScope(string GenerationId, string Resource, string Client, string? User);

/// <summary>
/// Signs and checks link tickets: <c>base64url(payload).base64url(HMAC-SHA256)</c>, where the payload names the owner and
/// the expiry, and the MAC also covers the generation id and the resource, so a ticket opens nothing else.
/// </summary>
internal sealed class LinkTickets
{
    public const string QueryName = "ticket";

    /// <summary>How long a ticket opens its link: long enough to follow a link just read, short enough that a leaked URL soon dies.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);

    private static readonly byte[] Purpose = "mai-image-gateway link v1"u8.ToArray();

    private readonly byte[]? _key;
    private readonly byte[]? _previousKey;
    private readonly TimeProvider _time;

    public LinkTickets(IOptions<LinkOptions> options, IHostEnvironment environment, TimeProvider time)
    {
        _time = time;
        _key = LinkOptions.Decode(options.Value.LinkSigningKey);
        _previousKey = LinkOptions.Decode(options.Value.PreviousLinkSigningKey);
        if (_key is null && environment.IsDevelopment())
        {
            _key = RandomNumberGenerator.GetBytes(LinkOptions.MinKeyBytes); // one replica in Development: its links die with it
        }
    }

    /// <summary>False outside Development without <c>Gateway__LinkSigningKey</c>: links are then plain routes that need the usual headers.</summary>
    public bool Enabled => _key is not null;

    /// <summary>A ticket for <paramref name="scope"/>, valid for <see cref="Lifetime"/>; null when links are not signed.</summary>
    public string? Issue(LinkScope scope)
    {
        if (_key is null)
        {
            return null;
        }

        var expires = (_time.GetUtcNow() + Lifetime).ToUnixTimeSeconds();
        var payload = Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(
            new TicketPayload(scope.Client, scope.User, expires), LinkJsonContext.Default.TicketPayload));
        return payload + "." + Base64Url.EncodeToString(Mac(_key, payload, scope.GenerationId, scope.Resource));
    }

    /// <summary><paramref name="path"/> with a ticket for <paramref name="scope"/> as its query (unchanged when links are not signed).</summary>
    public string Append(string path, LinkScope scope) =>
        Issue(scope) is { } ticket ? $"{path}{(path.Contains('?', StringComparison.Ordinal) ? '&' : '?')}{QueryName}={ticket}" : path;

    /// <summary>The scope <paramref name="ticket"/> grants for this generation's <paramref name="resource"/>, or null when it is tampered, expired or for something else.</summary>
    public LinkScope? Validate(string ticket, string generationId, string resource)
    {
        if (_key is null)
        {
            return null;
        }

        var dot = ticket.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0 || !TryDecode(ticket.AsSpan(dot + 1), out var presented))
        {
            return null;
        }

        var payload = ticket[..dot];
        var signedByUs = CryptographicOperations.FixedTimeEquals(presented, Mac(_key, payload, generationId, resource))
            || (_previousKey is not null && CryptographicOperations.FixedTimeEquals(presented, Mac(_previousKey, payload, generationId, resource)));
        if (!signedByUs || !TryDecode(payload, out var json))
        {
            return null;
        }

        TicketPayload? claims;
        try
        {
            claims = JsonSerializer.Deserialize(json, LinkJsonContext.Default.TicketPayload);
        }
        catch (JsonException)
        {
            return null;
        }

        return claims is { C.Length: > 0 } && _time.GetUtcNow().ToUnixTimeSeconds() < claims.E
            ? new LinkScope(generationId, resource, claims.C, claims.U)
            : null;
    }

    private static byte[] Mac(byte[] key, string payload, string generationId, string resource)
    {
        // Each part is length-prefixed, so no choice of id or payload can pass for another split of the same bytes.
        using var buffer = new MemoryStream();
        Span<byte> length = stackalloc byte[4];
        foreach (var part in (ReadOnlySpan<byte[]>)[Purpose, Encoding.ASCII.GetBytes(payload), Encoding.UTF8.GetBytes(generationId), Encoding.UTF8.GetBytes(resource)])
        {
            BinaryPrimitives.WriteInt32BigEndian(length, part.Length);
            buffer.Write(length);
            buffer.Write(part);
        }

        return HMACSHA256.HashData(key, buffer.ToArray());
    }

    private static bool TryDecode(ReadOnlySpan<char> base64Url, out byte[] bytes)
    {
        if (!Base64Url.IsValid(base64Url, out var length))
        {
            bytes = [];
            return false;
        }

        bytes = new byte[length];
        return Base64Url.TryDecodeFromChars(base64Url, bytes, out _);
    }

    /// <summary>What a ticket says: client, user and expiry (Unix seconds), in as few bytes as a URL deserves.</summary>
    internal sealed record TicketPayload(string C, string? U, long E);
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(LinkTickets.TicketPayload))]
internal sealed partial class LinkJsonContext : JsonSerializerContext;
