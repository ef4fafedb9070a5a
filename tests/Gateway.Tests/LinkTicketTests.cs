using System.Net;
using System.Text.Json.Nodes;
using Gateway.Links;
using Gateway.Tests.Infrastructure;
using Gateway.Tests.Unit;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Tests;

/// <summary>
/// Signed links over HTTP: <c>links.events</c> opens without headers for its owner, for five minutes, for that one
/// generation's stream; anything else about a ticket (tampered, expired, another generation, another route) is 401.
/// </summary>
public sealed class LinkTicketTests(RedisServer redis)
{
    private static readonly string Key = Convert.ToBase64String(Enumerable.Range(7, 32).Select(i => (byte)i).ToArray());
    private static readonly string PreviousKey = Convert.ToBase64String(Enumerable.Range(50, 32).Select(i => (byte)i).ToArray());

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Dictionary<string, string?> Signed(params (string Key, string? Value)[] more)
    {
        var settings = new Dictionary<string, string?> { ["Gateway:LinkSigningKey"] = Key };
        foreach (var (key, value) in more)
        {
            settings[key] = value;
        }

        return settings;
    }

    [Fact]
    public async Task EventsLink_OpensWithoutHeaders_ToTheCompletedEvent()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Signed());
        using var submit = await harness.Client().PostJsonAsync("/v1/generations", new { prompt = "a signed stream" });
        var generation = await submit.JsonAsync();
        var id = generation["id"]!.GetValue<string>();
        var events = generation["links"]!["events"]!.GetValue<string>();
        Assert.StartsWith($"/v1/generations/{id}/events?ticket=", events, StringComparison.Ordinal);
        Assert.Equal($"/v1/generations/{id}/status", generation["links"]!["status"]!.GetValue<string>()); // only the stream is signed

        var stream = await ReadStreamAsync(harness.Client(key: null), events);

        Assert.Equal("completed", stream[^1].Event);
        var completed = JsonNode.Parse(stream[^1].Data)!;
        Assert.Equal(id, completed["id"]!.GetValue<string>());
        Assert.NotNull(completed["result"]);
    }

    [Fact]
    public async Task EventsRoute_StillAcceptsTheUsualHeaders_AndHeadersWinOverATicket()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Signed());
        var id = await harness.Client().SubmitAsync(new { prompt = "headers" });

        Assert.Equal("completed", (await ReadStreamAsync(harness.Client(), $"/v1/generations/{id}/events"))[^1].Event);
        Assert.Equal("completed", (await ReadStreamAsync(harness.Client(), $"/v1/generations/{id}/events?ticket=garbage.garbage"))[^1].Event);
    }

    [Fact]
    public async Task TamperedExpiredOrMisusedTickets_Answer401Problems_AndNothingElse()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, e => e.RunTime = TimeSpan.FromSeconds(5), settings: Signed());
        var client = harness.Client();
        var mine = await client.SubmitAsync(new { prompt = "mine" });
        var other = await client.SubmitAsync(new { prompt = "other" });
        var ticket = await TicketAsync(client, mine);
        var anonymous = harness.Client(key: null);

        var expired = LinkTicketUnitTests.Tickets(Key, new FakeTimeProvider(DateTimeOffset.UtcNow.AddMinutes(-6)))
            .Issue(new LinkScope(mine, "events", "alpha", null))!;
        var images = LinkTicketUnitTests.Tickets(Key).Issue(new LinkScope(mine, "images", "alpha", null))!;
        var otherKey = LinkTicketUnitTests.Tickets(PreviousKey).Issue(new LinkScope(mine, "events", "alpha", null))!;
        var tampered = ticket[..^2] + (ticket[^2] == 'A' ? "B" : "A") + ticket[^1];

        foreach (var (what, path) in new[]
                 {
                     ("tampered", $"/v1/generations/{mine}/events?ticket={tampered}"),
                     ("expired", $"/v1/generations/{mine}/events?ticket={expired}"),
                     ("another generation's stream", $"/v1/generations/{other}/events?ticket={ticket}"),
                     ("another resource's ticket", $"/v1/generations/{mine}/events?ticket={images}"),
                     ("signed with a key the gateway does not hold", $"/v1/generations/{mine}/events?ticket={otherKey}"),
                     ("twice", $"/v1/generations/{mine}/events?ticket={ticket}&ticket={ticket}"),
                     ("a route that takes no ticket", $"/v1/generations/{mine}?ticket={ticket}"),
                     ("the status route", $"/v1/generations/{mine}/status?ticket={ticket}"),
                 })
        {
            using var response = await anonymous.GetAsync(path, Ct);
            var problem = await response.JsonAsync();
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{what}: {(int)response.StatusCode} {problem}");
            Assert.Equal("urn:mai-image-gateway:problem:unauthorized", problem["type"]!.GetValue<string>());
            Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
        }

        // A ticket issued 4 minutes ago still opens the stream.
        var recent = LinkTicketUnitTests.Tickets(Key, new FakeTimeProvider(DateTimeOffset.UtcNow.AddMinutes(-4)))
            .Issue(new LinkScope(mine, "events", "alpha", null))!;
        using var open = await anonymous.GetAsync($"/v1/generations/{mine}/events?ticket={recent}", HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, open.StatusCode);
    }

    [Fact]
    public async Task TicketForAnotherOwner_OfAGeneration_Is404LikeAnyOtherCaller()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Signed());
        var id = await harness.Client().SubmitAsync(new { prompt = "alpha's" });
        var betas = LinkTicketUnitTests.Tickets(Key).Issue(new LinkScope(id, "events", "beta", null))!;

        using var response = await harness.Client(key: null).GetAsync($"/v1/generations/{id}/events?ticket={betas}", Ct);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task Rotation_TicketsOfThePreviousKeyStillOpen_NewOnesUseTheNewKey()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Signed(("Gateway:PreviousLinkSigningKey", PreviousKey)));
        var id = await harness.Client().SubmitAsync(new { prompt = "rotating" });
        var old = LinkTicketUnitTests.Tickets(PreviousKey).Issue(new LinkScope(id, "events", "alpha", null))!;

        Assert.Equal("completed", (await ReadStreamAsync(harness.Client(key: null), $"/v1/generations/{id}/events?ticket={old}"))[^1].Event);
        var fresh = await TicketAsync(harness.Client(), id);
        Assert.NotNull(LinkTicketUnitTests.Tickets(Key).Validate(fresh, id, "events"));
    }

    [Fact]
    public async Task WithoutASigningKey_LinksArePlain_ATicketOpensNothing_AndTheStartSaysSoOnce()
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        using var submit = await harness.Client().PostJsonAsync("/v1/generations", new { prompt = "plain" });
        var generation = await submit.JsonAsync();
        var id = generation["id"]!.GetValue<string>();
        Assert.Equal($"/v1/generations/{id}/events", generation["links"]!["events"]!.GetValue<string>());

        var forged = LinkTicketUnitTests.Tickets(Key).Issue(new LinkScope(id, "events", "alpha", null))!;
        using var response = await harness.Client(key: null).GetAsync($"/v1/generations/{id}/events?ticket={forged}", Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Single(harness.LogEvents, e => e.MessageTemplate.Text.Contains("Gateway__LinkSigningKey is not set", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Ticket_IsInNoLogLine_AndNotOnTheTrace()
    {
        using var spans = new RequestSpans();

        // ASP.NET Core's own request lines (with the query) are written at Information: turned on here.
        await using var harness = await GatewayHarness.StartAsync(redis, settings: Signed(("Serilog:MinimumLevel:Override:Microsoft.AspNetCore", "Verbose")));
        var id = await harness.Client().SubmitAsync(new { prompt = "quiet" });
        var ticket = await TicketAsync(harness.Client(), id);
        await ReadStreamAsync(harness.Client(key: null), $"/v1/generations/{id}/events?ticket={ticket}");
        using (await harness.Client(key: null).GetAsync($"/v1/generations/{id}/events?ticket={ticket}x", Ct))
        {
        }

        await Task.Delay(300, Ct); // the request-log line is written after the response
        var signature = ticket[(ticket.IndexOf('.', StringComparison.Ordinal) + 1)..];
        Assert.Empty(harness.LogOccurrences(signature));
        Assert.True(harness.LogEvents.Any(e => e.RenderMessage().Contains("?ticket=Redacted", StringComparison.Ordinal)),
            string.Join("\n", harness.LogEvents.Select(e => e.RenderMessage()).Where(m => m.Contains("/events", StringComparison.Ordinal))));
        Assert.True(harness.LogEvents.Any(e => e.RenderMessage().Contains($"/v1/generations/{id}/events\" responded 200", StringComparison.Ordinal)),
            string.Join("\n", harness.LogEvents.Select(e => e.RenderMessage()).Where(m => m.Contains("/events", StringComparison.Ordinal))));
        var ended = spans.Ended;
        var streamSpans = ended.Where(s => (s.GetTagItem("url.path") as string)?.EndsWith("/events", StringComparison.Ordinal) == true).ToList();
        Assert.NotEmpty(streamSpans);
        Assert.All(streamSpans, s => Assert.DoesNotContain(signature, s.GetTagItem("url.query") as string ?? "", StringComparison.Ordinal));
        Assert.DoesNotContain(ended, s => s.Tags.Any(t => t.Value?.Contains(signature, StringComparison.Ordinal) == true));
    }

    private static async Task<string> TicketAsync(HttpClient client, string id)
    {
        using var response = await client.GetAsync($"/v1/generations/{id}", Ct);
        var events = (await response.JsonAsync())["links"]!["events"]!.GetValue<string>();
        return events[(events.IndexOf("ticket=", StringComparison.Ordinal) + "ticket=".Length)..];
    }

    private static async Task<List<ServerSentEvent>> ReadStreamAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(path, HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        return await new ServerSentEventReader(await response.Content.ReadAsStreamAsync(Ct)).ReadAllAsync(Ct);
    }
}
