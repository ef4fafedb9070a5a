using System.Net;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests.Faults;

/// <summary>
/// The Redis health probe times PINGs on the wall clock, never on the application clock. A CI run failed
/// with 503 from a healthy Redis: the limit tests move a fake clock forward, and the probe timed its PING
/// against that clock, so a jump of a few seconds during one PING "timed it out", and the replica refused
/// everything until the clock moved again.
/// </summary>
public sealed class RedisProbeClockTests(RedisServer redis)
{
    [Fact]
    public async Task MovingTheApplicationClock_DoesNotMakeAHealthyRedisLookUnavailable()
    {
        var time = FakeTime.At("2026-11-24T10:00:00Z");
        var client = new TestClient(("RequestsPerMinute", "1000"));
        await using var harness = await GatewayHarness.StartAsync(redis, settings: client.Settings, services: FakeTime.Use(time));
        var http = harness.Client(client.Key);

        // Large jumps of the application clock, each stepping through many probe periods while the probe runs,
        // then a request straight after each, as the limit tests do.
        for (var i = 0; i < 40; i++)
        {
            time.Advance(TimeSpan.FromHours(1));
            using var ready = await http.GetAsync("/health/ready", TestContext.Current.CancellationToken);
            Assert.True(ready.StatusCode == HttpStatusCode.OK, $"readiness said {(int)ready.StatusCode} after jump {i + 1}");
        }

        using var accepted = await http.PostJsonAsync("/v1/generations", new { prompt = "after the clock moved" });
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
    }
}
