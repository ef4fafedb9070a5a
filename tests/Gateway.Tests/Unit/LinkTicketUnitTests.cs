using Gateway.Links;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Tests.Unit;

/// <summary>The ticket's rules, without HTTP: scope, expiry, tampering, rotation, and when links are signed at all.</summary>
public sealed class LinkTicketUnitTests
{
    private static readonly string KeyA = Convert.ToBase64String(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray());
    private static readonly string KeyB = Convert.ToBase64String(Enumerable.Range(100, 32).Select(i => (byte)i).ToArray());
    private static readonly LinkScope Scope = new("764cabcf-b745-4b3e-ae38-1200304cf45b", "events", "web", "user-oid-1");

    internal static LinkTickets Tickets(string? key, TimeProvider? time = null, string? previous = null, string environment = "Production") =>
        new(Options.Create(new LinkOptions { LinkSigningKey = key, PreviousLinkSigningKey = previous }),
            new HostingEnvironment { EnvironmentName = environment }, time ?? TimeProvider.System);

    [Fact]
    public void Issued_ValidatesForItsOwnScopeOnly()
    {
        var tickets = Tickets(KeyA);
        var ticket = tickets.Issue(Scope)!;

        Assert.Equal(Scope, tickets.Validate(ticket, Scope.GenerationId, "events"));
        Assert.Null(tickets.Validate(ticket, "another-generation", "events"));
        Assert.Null(tickets.Validate(ticket, Scope.GenerationId, "images"));
    }

    [Fact]
    public void ClientKeyOwner_HasNoUser_AndKeepsIt()
    {
        var tickets = Tickets(KeyA);
        var scope = Scope with { User = null };

        Assert.Equal(scope, tickets.Validate(tickets.Issue(scope)!, scope.GenerationId, scope.Resource));
    }

    [Fact]
    public void Ticket_IsValidForFiveMinutes_ThenNot()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-05-01T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var tickets = Tickets(KeyA, time);
        var ticket = tickets.Issue(Scope)!;

        time.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromSeconds(1));
        Assert.NotNull(tickets.Validate(ticket, Scope.GenerationId, "events"));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(tickets.Validate(ticket, Scope.GenerationId, "events"));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(-1)]
    [InlineData(-5)]
    public void AnyChangedCharacter_IsRefused(int position)
    {
        var tickets = Tickets(KeyA);
        var ticket = tickets.Issue(Scope)!;
        var index = position >= 0 ? position : ticket.Length + position;
        var tampered = ticket[..index] + (ticket[index] == 'A' ? 'B' : 'A') + ticket[(index + 1)..];

        Assert.Null(tickets.Validate(tampered, Scope.GenerationId, "events"));
    }

    [Fact]
    public void OwnerChangedInThePayload_IsRefused()
    {
        var tickets = Tickets(KeyA);
        var ticket = tickets.Issue(Scope)!;
        var other = tickets.Issue(Scope with { Client = "admin", User = null })!;
        var spliced = other[..other.IndexOf('.', StringComparison.Ordinal)] + ticket[ticket.IndexOf('.', StringComparison.Ordinal)..];

        Assert.Null(tickets.Validate(spliced, Scope.GenerationId, "events"));
    }

    [Theory]
    [InlineData("")]
    [InlineData(".")]
    [InlineData("abc")]
    [InlineData("abc.def")]
    [InlineData("!!!.???")]
    public void Garbage_IsRefused(string ticket) => Assert.Null(Tickets(KeyA).Validate(ticket, Scope.GenerationId, "events"));

    [Fact]
    public void Rotation_ThePreviousKeyStillValidates_AnotherKeyDoesNot()
    {
        var old = Tickets(KeyA).Issue(Scope)!;
        var rotated = Tickets(KeyB, previous: KeyA);

        Assert.Equal(Scope, rotated.Validate(old, Scope.GenerationId, "events"));
        Assert.Null(Tickets(KeyB).Validate(old, Scope.GenerationId, "events"));
        Assert.Equal(Scope, Tickets(KeyB).Validate(rotated.Issue(Scope)!, Scope.GenerationId, "events")); // new tickets use the new key
    }

    [Fact]
    public void WithoutAKey_LinksStayPlain_ExceptInDevelopment()
    {
        var production = Tickets(null);
        Assert.False(production.Enabled);
        Assert.Null(production.Issue(Scope));
        Assert.Equal("/v1/generations/x/events", production.Append("/v1/generations/x/events", Scope));

        var development = Tickets(null, environment: Environments.Development);
        Assert.True(development.Enabled);
        var link = development.Append("/v1/generations/x/events", Scope);
        Assert.StartsWith("/v1/generations/x/events?ticket=", link, StringComparison.Ordinal);
        Assert.Equal(Scope, development.Validate(link[(link.IndexOf('=', StringComparison.Ordinal) + 1)..], Scope.GenerationId, "events"));
    }

    [Fact]
    public void Ticket_IsUrlSafe_AndShort()
    {
        var ticket = Tickets(KeyA).Issue(Scope)!;
        Assert.Matches("^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$", ticket);
        Assert.True(ticket.Length < 200, ticket);
    }

    [Theory]
    [InlineData("c2hvcnQ=", "Gateway__LinkSigningKey")]
    [InlineData("not base64 at all!", "Gateway__LinkSigningKey")]
    public void BadKey_FailsValidationNamingTheSetting(string key, string named)
    {
        var result = new LinkOptionsValidator().Validate(null, new LinkOptions { LinkSigningKey = key });
        Assert.True(result.Failed);
        Assert.Contains(named, result.FailureMessage, StringComparison.Ordinal);
    }
}
