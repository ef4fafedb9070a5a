using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Serilog.Core;
using Serilog.Debugging;
using Serilog.Events;
using Serilog.Formatting;

namespace Gateway.Hosting;

/// <summary>
/// The production console: a request's thread only queues its event; one background loop formats the queued lines
/// into one buffer and writes it when the queue is empty or the buffer is full. Under load many lines leave in one
/// write(2); when the gateway is quiet a line is written as soon as it is logged. A full queue (10,000 events) makes
/// the logging thread wait rather than drop the line: every request keeps its line, and memory stays bounded.
/// </summary>
/// <remarks>
/// In place of Serilog.Sinks.Async around Serilog's console sink, measured under load (README, issue 13): the console
/// sink flushed after every line (a write(2), a StringWriter and its string per line), and Sinks.Async's queue
/// (a BlockingCollection) spun in sched_yield each time it ran empty — together a fifth of the gateway's CPU samples.
/// A channel's reader waits without spinning. Each line is formatted whole before any of it is written: a formatter
/// that throws leaves no half line (the event is reported to Serilog's SelfLog and skipped).
/// </remarks>
internal sealed class BufferedConsoleSink : ILogEventSink, IDisposable
{
    /// <summary>Events queued before a logging thread waits, as Sinks.Async's default buffer.</summary>
    public const int QueueLimit = 10_000;

    private const int BufferChars = 32 * 1024;
    private const int LineChars = 2 * 1024;
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(5);

    private readonly ITextFormatter _formatter;
    private readonly LogEventLevel _minimumLevel;
    private readonly StreamWriter _output;
    private readonly StringWriter _line = new(new StringBuilder(LineChars), CultureInfo.InvariantCulture);
    private readonly Channel<LogEvent> _queue = Channel.CreateBounded<LogEvent>(
        new BoundedChannelOptions(QueueLimit) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly Task _writing;

    public BufferedConsoleSink(ITextFormatter formatter, Stream output, LogEventLevel minimumLevel = LogEventLevel.Verbose)
    {
        _formatter = formatter;
        _minimumLevel = minimumLevel;
        _output = new StreamWriter(output, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), BufferChars) { AutoFlush = false };
        _writing = Task.Run(WriteAsync);
    }

    public void Emit(LogEvent logEvent)
    {
        if (logEvent.Level < _minimumLevel || _queue.Writer.TryWrite(logEvent))
        {
            return;
        }

        // Full: wait for room (or for the sink to close, when the event is dropped as any after disposal).
        try
        {
            _queue.Writer.WriteAsync(logEvent).AsTask().GetAwaiter().GetResult();
        }
        catch (ChannelClosedException)
        {
        }
    }

    /// <summary>
    /// Writes what is queued, then flushes and closes the output. Waits at most 5 seconds: an output nobody reads any
    /// more (a stuck pipe) is left to the loop still writing into it, never flushed from here, so shutdown goes on.
    /// </summary>
    public void Dispose()
    {
        _queue.Writer.TryComplete();
        if (_writing.Wait(DrainTimeout))
        {
            _output.Dispose();
        }
    }

    private async Task WriteAsync()
    {
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var logEvent))
            {
                Write(logEvent);
            }

            Flush();
        }
    }

    private void Write(LogEvent logEvent)
    {
        var line = _line.GetStringBuilder();
        line.Clear();
        try
        {
            _formatter.Format(logEvent, _line);
            _output.Write(line);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            SelfLog.WriteLine("The console could not write a log event: {0}", e);
        }

        if (line.Capacity > BufferChars)
        {
            // One very long line (an exception's stack) need not keep its buffer.
            line.Clear();
            line.Capacity = LineChars;
        }
    }

    private void Flush()
    {
        try
        {
            _output.Flush();
        }
        catch (IOException e)
        {
            SelfLog.WriteLine("The console could not be written: {0}", e);
        }
    }
}
