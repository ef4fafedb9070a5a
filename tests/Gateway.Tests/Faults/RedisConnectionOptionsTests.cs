using Gateway.Storage;
using StackExchange.Redis;

namespace Gateway.Tests.Faults;

/// <summary>The Redis client settings behind the outage behaviour, and that an operator's connection string still wins.</summary>
public sealed class RedisConnectionOptionsTests
{
    [Fact]
    public void Defaults_FailFastWhileDisconnected_AndRetryAtLeastOnceASecond()
    {
        var options = RedisConnection.Options("redis.internal:6379,password=not-logged");

        Assert.False(options.AbortOnConnectFail);
        Assert.Equal(1000, options.ConnectTimeout);
        Assert.Equal(1000, options.SyncTimeout);
        Assert.Equal(1000, options.AsyncTimeout);
        Assert.Equal(5, options.KeepAlive);
        Assert.False(options.BacklogPolicy.QueueWhileDisconnected);
        Assert.Equal(TimeSpan.FromMilliseconds(500), options.HeartbeatInterval);
        Assert.Equal("mai-image-gateway", options.ClientName);
        // However long Redis has been gone, the next attempt is at most a second after the last one.
        Assert.All(Enumerable.Range(0, 200), _ => Assert.True(options.ReconnectRetryPolicy!.ShouldRetry(100_000, 1000)));
    }

    [Fact]
    public void SettingsInTheConnectionString_WinOverTheDefaults()
    {
        var options = RedisConnection.Options("redis.internal:6379,abortConnect=true,ConnectTimeout=5000,syncTimeout=3000,keepAlive=60,name=reporting");

        Assert.True(options.AbortOnConnectFail);
        Assert.Equal(5000, options.ConnectTimeout);
        Assert.Equal(3000, options.SyncTimeout);
        Assert.Equal(3000, options.AsyncTimeout); // unset, so it follows syncTimeout as the client's own rule says
        Assert.Equal(60, options.KeepAlive);
        Assert.Equal("reporting", options.ClientName);
    }

    [Fact]
    public void AnAsyncTimeoutAlone_IsKept()
    {
        var options = RedisConnection.Options("redis.internal:6379,asyncTimeout=2500");

        Assert.Equal(2500, options.AsyncTimeout);
        Assert.Equal(1000, options.SyncTimeout);
    }

    [Fact]
    public void AnInvalidConnectionString_NamesTheSetting()
    {
        var error = Assert.Throws<InvalidOperationException>(() => RedisConnection.Options("redis.internal:6379,notAKeyword=1"));

        Assert.Contains("ConnectionStrings__Redis", error.Message, StringComparison.Ordinal);
    }
}
