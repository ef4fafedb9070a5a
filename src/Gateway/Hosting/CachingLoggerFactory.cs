using System.Collections.Concurrent;

namespace Gateway.Hosting;

/// <summary>
/// One logger per category, as Microsoft's own LoggerFactory keeps them. Serilog's factory builds a new logger (and a
/// Serilog context logger under it) on every <see cref="CreateLogger"/>, and ASP.NET Core asks for one per request:
/// every authentication handler in its constructor, every <c>TypedResults</c> result when it executes. Categories are
/// type names, a small fixed set, so the cache stays small.
/// </summary>
internal sealed class CachingLoggerFactory(ILoggerFactory inner) : ILoggerFactory
{
    private readonly ConcurrentDictionary<string, ILogger> _loggers = new(StringComparer.Ordinal);

    public ILogger CreateLogger(string categoryName) => _loggers.GetOrAdd(categoryName, inner.CreateLogger);

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    /// <summary>Disposes Serilog's factory, which flushes and closes the sinks (the console's background writer too).</summary>
    public void Dispose() => inner.Dispose();
}
