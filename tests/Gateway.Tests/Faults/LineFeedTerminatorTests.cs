using System.Net.Sockets;
using System.Text;
using Gateway.Tests.Infrastructure;
using Gateway.Tests.Process;

namespace Gateway.Tests.Faults;

/// <summary>
/// Issue 9, point 9: a bare LF ending a request or header line is refused (a proxy in front that splits lines
/// only on CRLF would see one header where Kestrel saw two). The switch lives in the built gateway's
/// runtimeconfig, so this runs the published build (the image's) as its own process and speaks to it over a raw socket.
/// </summary>
[Collection(nameof(GatewayProcesses))]
public sealed class LineFeedTerminatorTests(RedisServer redis, PublishedGateway published)
{
    [Fact]
    public async Task BuiltGateway_RefusesBareLineFeedLineEnds_With400_AndServesCrLf()
    {
        await using var world = await ProcessHarness.StartAsync(redis, published.Executable);
        var port = world.Gateway.Port;

        var crlf = await SendRawAsync(port, "GET /health/live HTTP/1.1\r\nHost: x\r\nX-Foo: bar\r\nConnection: close\r\n\r\n");
        var injectedHeader = await SendRawAsync(port, "GET /health/live HTTP/1.1\r\nHost: x\r\nX-Foo: bar\nX-Injected: 1\r\nConnection: close\r\n\r\n");
        var bareRequestLine = await SendRawAsync(port, "GET /health/live HTTP/1.1\nHost: x\r\nConnection: close\r\n\r\n");
        var bareEnd = await SendRawAsync(port, "GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\n");

        Assert.True(crlf.StartsWith("HTTP/1.1 200", StringComparison.Ordinal), $"CRLF answered: {crlf}{world.Describe()}");
        Assert.True(injectedHeader.StartsWith("HTTP/1.1 400", StringComparison.Ordinal), $"a bare LF inside the headers answered: {injectedHeader}");
        Assert.True(bareRequestLine.StartsWith("HTTP/1.1 400", StringComparison.Ordinal), $"a bare LF after the request line answered: {bareRequestLine}");
        Assert.True(bareEnd.StartsWith("HTTP/1.1 400", StringComparison.Ordinal), $"a bare LF ending the headers answered: {bareEnd}");
    }

    private static async Task<string> SendRawAsync(int port, string request)
    {
        var ct = TestContext.Current.CancellationToken;
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(System.Net.IPAddress.Loopback, port, ct);
        await using var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            return await new StreamReader(stream, Encoding.ASCII).ReadToEndAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return "(no answer within 10 s)";
        }
    }
}
