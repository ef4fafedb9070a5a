using System.Text;
using Gateway.Generations;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Tests.Unit;

/// <summary>
/// The per-replica read cache: ended records and small results are kept until the store's TTL lets them go, running
/// records only for StatusCacheTtl, an end signal drops a running record, and the whole stays within its byte budget,
/// least recently used first out.
/// </summary>
public sealed class GenerationReadCacheTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 5, 1, 12, 0, 0, TimeSpan.Zero));

    private GenerationReadCache Cache(long maxBytes = 16 * 1024 * 1024, int inlineMax = 256 * 1024) =>
        new(Options.Create(new GenerationOptions
        {
            ReadCacheMaxBytes = maxBytes,
            InlineResultMaxBytes = inlineMax,
            StatusCacheTtl = TimeSpan.FromSeconds(1),
            ResultTtl = TimeSpan.FromDays(7),
        }), _time);

    private GenerationRecord Running(string id, string client = "alpha") => new()
    {
        Id = id,
        Client = client,
        Model = "microsoft/mai-image-2.5",
        Status = GenerationStatus.InProgress,
        CreatedAt = _time.GetUtcNow(),
        StatusUrl = $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{id}/status",
        ResponseUrl = $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{id}",
        CancelUrl = $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{id}/cancel",
    };

    private GenerationRecord Completed(string id, string client = "alpha") =>
        Running(id, client) with { Status = GenerationStatus.Completed, CompletedAt = _time.GetUtcNow() };

    private static StoredResult Result(int bytes) =>
        new(false, Encoding.UTF8.GetBytes("{\"images\":[],\"description\":\"" + new string('x', Math.Max(0, bytes - 30)) + "\"}"), []);

    [Fact]
    public void EndedRecordAndResult_AreKept_UntilTheStoreLetsThemGo()
    {
        var cache = Cache();
        var record = Completed("a");
        var result = Result(1000);

        cache.Remember(record);
        cache.RememberResult(record, result);
        _time.Advance(TimeSpan.FromDays(6));

        Assert.Same(record, cache.Find("a"));
        Assert.Same(result, cache.FindResult("a"));

        _time.Advance(TimeSpan.FromDays(1));
        Assert.Null(cache.Find("a"));
        Assert.Null(cache.FindResult("a"));
        Assert.Equal(0, cache.Count);
    }

    [Fact]
    public void RunningRecord_IsFreshForStatusCacheTtl_ButItsOwnerIsKnownForLonger()
    {
        var cache = Cache();
        cache.Remember(Running("r"));

        _time.Advance(TimeSpan.FromMilliseconds(900));
        Assert.NotNull(cache.Find("r"));

        _time.Advance(TimeSpan.FromMilliseconds(200));
        Assert.Null(cache.Find("r"));
        Assert.Equal("alpha", cache.Find("r", anyAge: true)?.Client);
    }

    [Fact]
    public void EndSignal_DropsARunningRecord_AndARaceWithItKeepsNothingStale()
    {
        var cache = Cache();
        cache.Remember(Running("r"));
        var stamp = cache.Stamp; // a store read starts…

        cache.Ended("r");
        cache.Remember(Running("r"), stamp); // …and its (stale) running record arrives after the signal

        Assert.Null(cache.Find("r", anyAge: true));
        cache.Remember(Completed("r"), stamp);
        Assert.Equal(GenerationStatus.Completed, cache.Find("r")?.Status);
    }

    [Fact]
    public void EndedRecord_IsNeverReplacedByARunningOne_NorDroppedByTheEndSignal()
    {
        var cache = Cache();
        var ended = Completed("c");
        cache.Remember(ended);
        cache.RememberResult(ended, Result(500));

        cache.Remember(Running("c"));
        cache.Ended("c");

        Assert.Same(ended, cache.Find("c"));
        Assert.NotNull(cache.FindResult("c"));
    }

    [Fact]
    public void LargeResults_AreNotCached_NorThoseKeptAsSeparateImages()
    {
        var cache = Cache(inlineMax: 2048);
        var small = Completed("small");
        var large = Completed("large");
        var blobs = Completed("blobs");
        foreach (var record in new[] { small, large, blobs })
        {
            cache.Remember(record);
        }

        cache.RememberResult(small, Result(2000));
        cache.RememberResult(large, Result(4000));
        cache.RememberResult(blobs, new StoredResult(true, "{\"images\":[{\"url\":\"gw-blob:0;data:image/png;base64,\"}]}"u8.ToArray(), [new byte[10]]));

        Assert.NotNull(cache.FindResult("small"));
        Assert.Null(cache.FindResult("large"));
        Assert.Null(cache.FindResult("blobs"));
        Assert.NotNull(cache.Find("large")); // the record is kept all the same
    }

    [Fact]
    public void OverItsBudget_TheLeastRecentlyUsedGoFirst_AndTheCacheStaysWithinIt()
    {
        const long budget = 64 * 1024; // about 36 entries of a record and a 1,000-byte result
        var cache = Cache(maxBytes: budget);
        var added = 0;
        void Add()
        {
            var record = Completed($"gen-{added++:D3}");
            cache.Remember(record);
            cache.RememberResult(record, Result(1000));
            Assert.True(cache.Bytes <= budget, $"{cache.Bytes} bytes held, over the {budget}-byte budget");
            _time.Advance(TimeSpan.FromMilliseconds(1));
        }

        while (added < 30)
        {
            Add();
        }

        Assert.Equal(30, cache.Count);
        Assert.NotNull(cache.Find("gen-000")); // read again: gen-001 is now the least recently used
        _time.Advance(TimeSpan.FromMilliseconds(1));
        while (cache.Count == added)
        {
            Add();
        }

        Assert.NotNull(cache.FindResult("gen-000"));
        Assert.Null(cache.Find("gen-001"));
        Assert.NotNull(cache.Find($"gen-{added - 1:D3}"));

        while (added < 200)
        {
            Add();
        }

        // What is kept is the most recent run of entries, and only as many as the budget holds.
        var kept = Enumerable.Range(0, 200).Where(i => cache.Find($"gen-{i:D3}") is not null).ToList();
        Assert.InRange(kept.Count, 20, 40);
        Assert.Equal(Enumerable.Range(200 - kept.Count, kept.Count), kept);
    }

    [Fact]
    public void ZeroBudget_KeepsNothing()
    {
        var cache = Cache(maxBytes: 0);
        var record = Completed("z");
        cache.Remember(record);
        cache.RememberResult(record, Result(100));

        Assert.Null(cache.Find("z"));
        Assert.Equal(0, cache.Count);
    }
}
