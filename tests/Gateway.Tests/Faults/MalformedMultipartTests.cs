using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Gateway.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Serilog.Core;
using Serilog.Events;
using SkiaSharp;

namespace Gateway.Tests.Faults;

/// <summary>
/// Issue 9, point 1: a malformed multipart body on <c>POST /v1/files</c> is the client's fault. Each shape
/// answers 400 (413/415 where those fit) as problem+json naming <c>file</c>, logs no error, and fal's storage
/// is not called (no initiate, no PUT) unless the upload was read whole (closing boundary, one file part)
/// and is an image. Bodies go out raw, exactly as written here, with <c>Content-Type: multipart/form-data; boundary=b</c>.
/// </summary>
public sealed class MalformedMultipartTests(RedisServer redis)
{
    private const string FormB = "multipart/form-data; boundary=b";
    private const string FileHead = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n";

    private static readonly byte[] Png = NoisyPng(48, 48);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string, string> MalformedBodies => new()
    {
        { "one byte '-'", "malformed-multipart" },
        { "no blank line after the part's headers", "malformed-multipart" },
        { "a part header over 16 KB", "malformed-multipart" },
        { "more than 16 part headers", "malformed-multipart" },
        { "a PNG part without the closing --b--", "malformed-multipart" },
        { "a PNG part ending in a boundary line that is not the closing one", "malformed-multipart" },
        { "a PNG part ending in --b with no closing dashes", "malformed-multipart" },
        { "truncated in the middle of the PNG bytes", "malformed-multipart" },
        { "an empty body", "malformed-multipart" },
        { "a preamble only", "malformed-multipart" },
        { "20 KB of text and no boundary", "malformed-multipart" },
        { "two file parts", "validation" },
        { "only the closing boundary", "validation" },
        { "a part with no headers at all", "validation" },
    };

    [Theory]
    [MemberData(nameof(MalformedBodies))]
    public async Task UploadFile_MalformedBody_Returns400NamingFile_AndNothingReachesFal(string shape, string slug)
    {
        await using var world = await World.StartAsync(redis);

        using var response = await PostRawAsync(world.Harness.Client(), Body(shape));

        await AssertRefusedAsync(world, response, HttpStatusCode.BadRequest, slug);
    }

    [Theory]
    [InlineData("multipart/form-data")]
    [InlineData("multipart/form-data; boundary=")]
    [InlineData("multipart/form-data; boundary=\"\"")]
    [InlineData("multipart/form-data; boundary=71")]
    [InlineData("multipart/form-data; boundary=5000")]
    public async Task UploadFile_MissingOrOverlongBoundary_Returns400NamingFile_AndNothingReachesFal(string contentType)
    {
        await using var world = await World.StartAsync(redis);
        // A body that would be well-formed with the boundary it names (or with 'b' where it names none).
        var boundary = contentType.Split("boundary=") is [_, var given] && int.TryParse(given, out var length) ? new string('x', length) : "b";
        contentType = contentType.Replace($"boundary={boundary.Length}", $"boundary={boundary}", StringComparison.Ordinal);
        var body = Concat(FileHead.Replace("--b", "--" + boundary, StringComparison.Ordinal), Png, $"\r\n--{boundary}--\r\n");

        using var response = await PostRawAsync(world.Harness.Client(), body, contentType);

        await AssertRefusedAsync(world, response, HttpStatusCode.BadRequest, "malformed-multipart");
    }

    [Fact]
    public async Task UploadFile_WellFormedButNotAnImage_Returns415NamingFile_AndNothingReachesFal()
    {
        await using var world = await World.StartAsync(redis);

        using var response = await PostRawAsync(world.Harness.Client(), Concat(FileHead, "GIF89 is not quite a GIF, and this is text"u8.ToArray(), "\r\n--b--\r\n"));

        await AssertRefusedAsync(world, response, HttpStatusCode.UnsupportedMediaType, "unsupported-media-type");
    }

    [Fact]
    public async Task UploadFile_OverMaxUploadBytes_Returns413NamingFile_AndNothingReachesFal()
    {
        await using var world = await World.StartAsync(redis);
        var big = new byte[10 * 1024 * 1024 + 1]; // one byte over the default Gateway:MaxUploadBytes
        Png.CopyTo(big, 0);

        using var response = await PostRawAsync(world.Harness.Client(), Concat(FileHead, big, "\r\n--b--\r\n"));

        var problem = await AssertRefusedAsync(world, response, HttpStatusCode.RequestEntityTooLarge, "body-too-large");
        Assert.Contains("10485760", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task UploadFile_ContentLengthOverMaxUploadBytes_Returns413NamingFile_AndNothingReachesFal()
    {
        await using var world = await World.StartAsync(redis, new() { ["Gateway:MaxUploadBytes"] = "4096" });
        var big = new byte[1024 * 1024];
        Png.CopyTo(big, 0);

        using var response = await PostRawAsync(world.Harness.Client(), Concat(FileHead, big, "\r\n--b--\r\n"));

        await AssertRefusedAsync(world, response, HttpStatusCode.RequestEntityTooLarge, "body-too-large");
    }

    [Fact]
    public async Task UploadFile_OverMaxUploadBytes_Chunked_Returns413NamingFile_AndNothingReachesFal()
    {
        await using var world = await World.StartAsync(redis, new() { ["Gateway:MaxUploadBytes"] = "4096" });
        var big = new byte[256 * 1024];
        Png.CopyTo(big, 0);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/files") { Content = Raw(Concat(FileHead, big, "\r\n--b--\r\n"), FormB) };
        request.Headers.TransferEncodingChunked = true; // no Content-Length: the cap must hold while reading

        using var response = await world.Harness.Client().SendAsync(request, Ct);

        await AssertRefusedAsync(world, response, HttpStatusCode.RequestEntityTooLarge, "body-too-large");
    }

    [Fact]
    public async Task UploadFile_ClientDisconnectsMidUpload_LogsNoError_AndNothingReachesFal()
    {
        await using var world = await World.StartAsync(redis);
        var url = world.Harness.GatewayUrl;
        var head = Encoding.ASCII.GetBytes($"POST /v1/files HTTP/1.1\r\nHost: {url.Authority}\r\nAuthorization: Bearer {GatewayHarness.AlphaKey}\r\n"
            + $"Content-Type: {FormB}\r\nContent-Length: 2000000\r\n\r\n");
        var part = new byte[128 * 1024];
        Png.CopyTo(part, 0);

        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(url.Host, url.Port, Ct);
            tcp.Client.LingerState = new LingerOption(true, 0); // close with a reset, as a killed client does
            var stream = tcp.GetStream();
            await stream.WriteAsync(Concat(head, FileHead, part), Ct);
            await stream.FlushAsync(Ct);
            // Go only once the handler is reading the body, as a client that dies mid-upload does.
            await WaitForAsync(() => world.Harness.Logs().Split('\n').Any(l =>
                l.StartsWith("Executing endpoint", StringComparison.Ordinal) && l.Contains("/v1/files", StringComparison.Ordinal)));
            await Task.Delay(1000, Ct);
        }

        await WaitForAsync(() => RequestLogLine(world) is not null);
        Assert.DoesNotContain("responded 5", RequestLogLine(world), StringComparison.Ordinal);
        AssertNothingReachedFal(world);
        Assert.Empty(world.Errors);
    }

    [Theory]
    [InlineData("a preamble and an epilogue")]
    [InlineData("a closing boundary without a final CRLF")]
    [InlineData("a text field before the file")]
    public async Task UploadFile_WholeRawBody_Returns201_AndFalGetsTheBytesOnce(string shape)
    {
        await using var world = await World.StartAsync(redis);
        var body = shape switch
        {
            "a preamble and an epilogue" => Concat("This is the preamble.\r\n", FileHead, Png, "\r\n--b--\r\nThis is the epilogue.\r\n"),
            "a closing boundary without a final CRLF" => Concat(FileHead, Png, "\r\n--b--"),
            _ => Concat("--b\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n", FileHead, Png, "\r\n--b--\r\n"),
        };

        using var response = await PostRawAsync(world.Harness.Client(), body);
        var json = await response.JsonAsync();

        Assert.True(response.StatusCode == HttpStatusCode.Created, $"{(int)response.StatusCode}: {json}");
        Assert.Equal(Png.Length, json["file_size"]!.GetValue<long>());
        Assert.Equal(Png, await new HttpClient().GetByteArrayAsync(json["url"]!.GetValue<string>(), Ct));
        Assert.Equal(1, world.Harness.Fal.UploadCount);
        Assert.Equal(1, world.Harness.Fal.UploadPutCount);
        Assert.Empty(world.Errors);
    }

    private static byte[] Body(string shape) => shape switch
    {
        "one byte '-'" => "-"u8.ToArray(),
        "no blank line after the part's headers" =>
            Concat("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n", Png, "\r\n--b--\r\n"),
        "a part header over 16 KB" =>
            Concat($"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{new string('a', 17 * 1024)}.png\"\r\n\r\n", Png, "\r\n--b--\r\n"),
        "more than 16 part headers" =>
            Concat("--b\r\nContent-Disposition: form-data; name=\"file\"\r\n", string.Concat(Enumerable.Range(0, 20).Select(i => $"X-H{i}: {i}\r\n")), "\r\n", Png, "\r\n--b--\r\n"),
        "a PNG part without the closing --b--" => Concat(FileHead, Png),
        "a PNG part ending in a boundary line that is not the closing one" => Concat(FileHead, Png, "\r\n--b\r\n"),
        "a PNG part ending in --b with no closing dashes" => Concat(FileHead, Png, "\r\n--b"),
        "truncated in the middle of the PNG bytes" => Concat(FileHead, Png[..(Png.Length / 2)]),
        "an empty body" => [],
        "a preamble only" => "This is a preamble, and nothing follows it.\r\n"u8.ToArray(),
        "20 KB of text and no boundary" => Encoding.ASCII.GetBytes(new string('x', 20 * 1024)),
        "two file parts" => Concat(FileHead, Png, "\r\n", FileHead, Png, "\r\n--b--\r\n"),
        "only the closing boundary" => "--b--\r\n"u8.ToArray(),
        "a part with no headers at all" => Concat("--b\r\n\r\n", Png, "\r\n--b--\r\n"),
        _ => throw new ArgumentOutOfRangeException(nameof(shape), shape, null),
    };

    private static async Task<System.Text.Json.Nodes.JsonNode> AssertRefusedAsync(World world, HttpResponseMessage response, HttpStatusCode status, string slug)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.JsonAsync();
        Assert.Equal($"urn:mai-image-gateway:problem:{slug}", problem["type"]!.GetValue<string>());
        Assert.Equal("file", problem.Field());
        AssertNothingReachedFal(world);
        Assert.Empty(world.Errors);
        return problem;
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for the gateway");
            await Task.Delay(20, Ct);
        }
    }

    /// <summary>The request-log line for the upload, written once the gateway is done with it.</summary>
    private static string? RequestLogLine(World world) => world.Harness.Logs().Split('\n')
        .FirstOrDefault(l => l.StartsWith("HTTP ", StringComparison.Ordinal) && l.Contains("/v1/files", StringComparison.Ordinal) && l.Contains("responded", StringComparison.Ordinal));

    private static void AssertNothingReachedFal(World world)
    {
        Assert.Equal(0, world.Harness.Fal.UploadCount);
        Assert.Equal(0, world.Harness.Fal.UploadPutCount);
        Assert.DoesNotContain(world.Harness.Fal.Requests, r => r.PathAndQuery.Contains("/storage/", StringComparison.Ordinal) || r.Method == "PUT");
    }

    private static Task<HttpResponseMessage> PostRawAsync(HttpClient client, byte[] body, string contentType = FormB) =>
        client.PostAsync("/v1/files", Raw(body, contentType), Ct);

    /// <summary>The body as written, with the Content-Type header exactly as given (no validation, no rewriting).</summary>
    private static ByteArrayContent Raw(byte[] body, string contentType)
    {
        var content = new ByteArrayContent(body);
        Assert.True(content.Headers.TryAddWithoutValidation("Content-Type", contentType));
        return content;
    }

    private static byte[] Concat(params object[] pieces) =>
        [.. pieces.SelectMany(p => p switch
        {
            string s => Encoding.UTF8.GetBytes(s),
            byte[] b => b,
            _ => throw new ArgumentException("strings and byte arrays only", nameof(pieces)),
        })];

    /// <summary>A PNG of noise, so it is large enough (a few KB) to cut in the middle.</summary>
    private static byte[] NoisyPng(int width, int height)
    {
        using var bitmap = new SKBitmap(width, height);
        var random = new Random(9);
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                bitmap.SetPixel(x, y, new SKColor((uint)random.Next() | 0xFF000000));
            }
        }

        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>A harness plus every log event at Error or above that its gateway wrote.</summary>
    private sealed class World : IAsyncDisposable
    {
        private readonly ErrorSink _errors = new();

        public GatewayHarness Harness { get; private set; } = null!;

        public IReadOnlyCollection<string> Errors => _errors.Events;

        public static async Task<World> StartAsync(RedisServer redis, Dictionary<string, string?>? settings = null)
        {
            var world = new World();
            world.Harness = await GatewayHarness.StartAsync(redis, settings: settings,
                services: s => s.AddSingleton<ILogEventSink>(world._errors));
            return world;
        }

        public ValueTask DisposeAsync() => Harness.DisposeAsync();
    }

    private sealed class ErrorSink : ILogEventSink
    {
        private readonly ConcurrentQueue<string> _events = new();

        public IReadOnlyCollection<string> Events => _events;

        public void Emit(LogEvent logEvent)
        {
            if (logEvent.Level >= LogEventLevel.Error)
            {
                _events.Enqueue($"{logEvent.Level}: {logEvent.RenderMessage()} {logEvent.Exception?.GetType().Name}");
            }
        }
    }
}
