using System.Text;
using Gateway.Hosting;
using Serilog.Events;
using Serilog.Formatting;
using Serilog.Formatting.Compact;
using Serilog.Parsing;

namespace Gateway.Tests.Unit;

/// <summary>
/// The production console (issue 13): lines are queued by the logging thread and written in batches by one background
/// loop; a quiet gateway's line is written at once, a full queue makes the logger wait instead of dropping the line,
/// closing writes what is queued, and a line that cannot be formatted leaves nothing half written.
/// </summary>
public sealed class BufferedConsoleSinkTests
{
    private static readonly MessageTemplate Template = new MessageTemplateParser().Parse("line {N}");

    private static LogEvent Line(int n, LogEventLevel level = LogEventLevel.Information) =>
        new(DateTimeOffset.UnixEpoch, level, null, Template, [new LogEventProperty("N", new ScalarValue(n))]);

    [Fact]
    public async Task ALineLoggedWhileQuiet_IsWrittenAtOnce_WithoutWaitingForMore()
    {
        var output = new GatedStream();
        using var sink = new BufferedConsoleSink(new CompactJsonFormatter(), output);

        sink.Emit(Line(1));

        var lines = await output.WaitForLinesAsync(1, TimeSpan.FromSeconds(10));
        Assert.Equal(1, Assert.Single(lines.Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("N").GetInt32())));
    }

    [Fact]
    public async Task ManyLines_AreWrittenWholeAndInOrder_InFewerWritesThanLines()
    {
        var output = new GatedStream();
        output.Hold(); // hold the writer back so the lines queue up behind it
        using var sink = new BufferedConsoleSink(new CompactJsonFormatter(), output);
        for (var n = 0; n < 2_000; n++)
        {
            sink.Emit(Line(n));
        }

        output.Release();
        var lines = await output.WaitForLinesAsync(2_000, TimeSpan.FromSeconds(30));

        Assert.Equal(Enumerable.Range(0, 2_000), lines.Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("N").GetInt32()));
        Assert.True(output.Writes < 200, $"{output.Writes} writes for 2,000 lines");
    }

    [Fact]
    public async Task AFullQueue_MakesTheLoggerWait_AndNoLineIsLost()
    {
        var output = new GatedStream();
        output.Hold();
        using var sink = new BufferedConsoleSink(new CompactJsonFormatter(), output);
        var total = BufferedConsoleSink.QueueLimit + 5_000;
        var emitted = 0;
        var logging = Task.Run(() =>
        {
            for (var n = 0; n < total; n++)
            {
                sink.Emit(Line(n));
                Volatile.Write(ref emitted, n + 1);
            }
        }, TestContext.Current.CancellationToken);

        // The writer fills its buffer (some hundreds of lines) and waits in its write; the queue takes QueueLimit more;
        // then Emit waits.
        await Task.Delay(TimeSpan.FromSeconds(1), TestContext.Current.CancellationToken);
        Assert.False(logging.IsCompleted, "Emit returned although the queue was full");
        Assert.InRange(Volatile.Read(ref emitted), BufferedConsoleSink.QueueLimit, BufferedConsoleSink.QueueLimit + 2_000);

        output.Release();
        await logging.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        var lines = await output.WaitForLinesAsync(total, TimeSpan.FromSeconds(30));
        Assert.Equal(total, lines.Count);
    }

    [Fact]
    public void Dispose_WritesWhatIsQueued()
    {
        var output = new GatedStream();
        var sink = new BufferedConsoleSink(new CompactJsonFormatter(), output);
        for (var n = 0; n < 500; n++)
        {
            sink.Emit(Line(n));
        }

        sink.Dispose();

        Assert.Equal(500, output.Lines().Count);
        Assert.True(output.Disposed);
    }

    [Fact]
    public async Task ALineTheFormatterCannotWrite_LeavesNoHalfLine_AndTheOthersAreWritten()
    {
        var output = new GatedStream();
        using var sink = new BufferedConsoleSink(new FailingOnTwo(), output);

        sink.Emit(Line(1));
        sink.Emit(Line(2));
        sink.Emit(Line(3));

        var lines = await output.WaitForLinesAsync(2, TimeSpan.FromSeconds(10));
        Assert.Equal(["line 1", "line 3"], lines);
    }

    [Fact]
    public async Task EventsBelowTheMinimumLevel_AreNotWritten()
    {
        var output = new GatedStream();
        using var sink = new BufferedConsoleSink(new CompactJsonFormatter(), output, LogEventLevel.Warning);

        sink.Emit(Line(1, LogEventLevel.Information));
        sink.Emit(Line(2, LogEventLevel.Warning));

        var lines = await output.WaitForLinesAsync(1, TimeSpan.FromSeconds(10));
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.Equal(2, System.Text.Json.JsonDocument.Parse(Assert.Single(output.Lines())).RootElement.GetProperty("N").GetInt32());
        Assert.Single(lines);
    }

    /// <summary>Writes "line N", and for N = 2 writes half a line and throws.</summary>
    private sealed class FailingOnTwo : ITextFormatter
    {
        public void Format(LogEvent logEvent, TextWriter output)
        {
            var n = ((ScalarValue)logEvent.Properties["N"]).Value;
            output.Write("line ");
            if (n is 2)
            {
                throw new FormatException("cannot format 2");
            }

            output.Write(n);
            output.Write('\n');
        }
    }

    /// <summary>An output whose writes wait while it is closed, counting the writes it takes.</summary>
    private sealed class GatedStream : Stream
    {
        private readonly MemoryStream _written = new();
        private readonly ManualResetEventSlim _open = new(true);

        public int Writes { get; private set; }

        public bool Disposed { get; private set; }

        public void Hold() => _open.Reset();

        public void Release() => _open.Set();

        public List<string> Lines()
        {
            lock (_written)
            {
                return Encoding.UTF8.GetString(_written.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
            }
        }

        public async Task<List<string>> WaitForLinesAsync(int count, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (Lines().Count < count && DateTime.UtcNow < deadline)
            {
                await Task.Delay(10);
            }

            return Lines();
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            _open.Wait();
            lock (_written)
            {
                Writes++;
                _written.Write(buffer);
            }
        }

        public override void Flush()
        {
        }

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
