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
    /// <summary>The category under which ASP.NET Core's hosting opens a log scope for every request.</summary>
    internal const string HostingDiagnostics = "Microsoft.AspNetCore.Hosting.Diagnostics";

    private readonly ConcurrentDictionary<string, ILogger> _loggers = new(StringComparer.Ordinal);

    public ILogger CreateLogger(string categoryName) => _loggers.GetOrAdd(categoryName, static (name, inner) =>
        name == HostingDiagnostics ? new ScopelessLogger(inner.CreateLogger(name)) : inner.CreateLogger(name), inner);

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    /// <summary>Disposes Serilog's factory, which flushes and closes the sinks (the console's background writer too).</summary>
    public void Dispose() => inner.Dispose();

    /// <summary>
    /// Hosting's logger without its per-request scope (RequestId, ConnectionId): opening it cost an async-local change,
    /// and every line logged during the request then copied both into its properties — about a tenth of the bytes a
    /// status poll allocated. Lines stay correlated by their trace and span ids (@tr, @sp), which the request line
    /// carries too. What hosting logs itself (start-up failures) is logged as before.
    /// </summary>
    private sealed class ScopelessLogger(ILogger inner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            inner.Log(logLevel, eventId, state, exception, formatter);
    }
}
