using Gateway.Hosting;

namespace Gateway.Tests.Unit;

public sealed class TrimScheduleTests
{
    private const long MiB = 1024 * 1024;

    /// <summary>Feeds one reading per interval; returns the intervals (1-based) at which the schedule said to collect.</summary>
    private static List<int> TrimsFor(params long[] allocatedPerInterval)
    {
        var allocated = 10 * MiB;
        var schedule = new TrimSchedule(allocated);
        var trims = new List<int>();
        for (var i = 0; i < allocatedPerInterval.Length; i++)
        {
            allocated += allocatedPerInterval[i];
            if (schedule.ShouldTrim(allocated))
            {
                trims.Add(i + 1);
                allocated += MiB; // what the collection itself allocates
                schedule.Trimmed(allocated);
            }
        }

        return trims;
    }

    [Fact]
    public void NeverCollects_WhileIdleWithoutABurst()
    {
        Assert.Empty(TrimsFor(Enumerable.Repeat(1 * MiB, 40).ToArray()));
    }

    [Fact]
    public void NeverCollects_WhileTheLoadGoesOn()
    {
        Assert.Empty(TrimsFor(Enumerable.Repeat(100 * MiB, 40).ToArray()));
    }

    [Fact]
    public void CollectsOnTheFirstIdleIntervalAfterABurst_ThenThreeTimesFourIntervalsApart_ThenStops()
    {
        long[] readings = [50 * MiB, 50 * MiB, .. Enumerable.Repeat(0L, 30)];
        Assert.Equal([3, 7, 11, 15], TrimsFor(readings));
    }

    [Fact]
    public void ABurstSpreadOverBusyIntervalsCounts_AndOnlyIdleIntervalsBringFollowUps()
    {
        long[] readings = [30 * MiB, 30 * MiB, 30 * MiB, 0, 0, 20 * MiB, 0, 0, 0, 0, 0, 0, 0, 0];
        // Trim at 4; the busy interval 6 (20 MiB, no new burst) does not count down, so the follow-ups come at 9 and 13.
        Assert.Equal([4, 9, 13], TrimsFor(readings));
    }

    [Fact]
    public void ANewBurstStartsAFreshRoundOfFollowUps()
    {
        long[] readings = [80 * MiB, 0, 0, 0, 0, 0, 80 * MiB, 0, 0, 0, 0, 0];
        Assert.Equal([2, 6, 8, 12], TrimsFor(readings));
    }
}
