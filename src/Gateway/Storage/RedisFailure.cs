using StackExchange.Redis;

namespace Gateway.Storage;

/// <summary>What a Redis call throws when Redis cannot be reached or does not answer in time.</summary>
internal static class RedisFailure
{
    /// <summary>
    /// The client's own exceptions, and the reset of a connection in the middle of a command, which the client's socket
    /// layer (Pipelines.Sockets.Unofficial, used by nothing else here) lets through as it is: an IOException that is
    /// not a RedisException. Every one of them means "the store is unavailable now" (503 + Retry-After), never a 500.
    /// </summary>
    public static bool IsUnavailable(Exception exception) =>
        exception is RedisException or RedisTimeoutException or Pipelines.Sockets.Unofficial.ConnectionResetException;
}
