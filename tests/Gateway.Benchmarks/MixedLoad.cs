using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using SkiaSharp;

namespace Gateway.Benchmarks;

/// <summary>
/// A seeded mix of what the gateway meets in a day, many of them refused: submits, reads, edits with inline
/// images, uploads, proxied calls, malformed and oversized JSON, bad credentials, unknown ids. Loopback only,
/// bounded by a request count, a concurrency and a deadline.
/// </summary>
internal sealed class MixedLoad : IDisposable
{
    private const string ProxyTarget = "https://queue.fal.run/microsoft/mai-image-2.5";

    private readonly HttpClient _http;
    private readonly byte[][] _images;
    private readonly List<string> _accepted = [];
    private readonly ConcurrentDictionary<string, int> _outcomes = new(StringComparer.Ordinal);

    public MixedLoad(Uri gateway, string clientKey, int concurrency)
    {
        _http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency, ConnectTimeout = TimeSpan.FromSeconds(10) })
        {
            BaseAddress = gateway,
            Timeout = TimeSpan.FromSeconds(60),
        };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", clientKey);
        // Incompressible PNGs of about 16 KiB, 256 KiB, 1 MiB and 2 MiB: the bodies that make the gateway allocate.
        _images = [NoisePng(64), NoisePng(256), NoisePng(512), NoisePng(720)];
    }

    /// <summary>Answers by status code (and "error" for no answer) since the last call.</summary>
    public IReadOnlyDictionary<string, int> TakeOutcomes()
    {
        var taken = new Dictionary<string, int>(_outcomes, StringComparer.Ordinal);
        _outcomes.Clear();
        return taken;
    }

    /// <summary>Sends <paramref name="requests"/> requests, <paramref name="concurrency"/> at a time, until done or the deadline; returns how many were sent.</summary>
    public async Task<int> RunAsync(int requests, int concurrency, int seed, TimeSpan deadline, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stop.CancelAfter(deadline);
        var next = -1;
        var workers = Enumerable.Range(0, concurrency).Select(worker => Task.Run(async () =>
        {
            var random = new Random(seed * 1_000 + worker);
            while (!stop.IsCancellationRequested && Interlocked.Increment(ref next) < requests)
            {
                await SendOneAsync(random, stop.Token);
            }
        }, CancellationToken.None));
        await Task.WhenAll(workers);
        cancellationToken.ThrowIfCancellationRequested();
        return Math.Min(Volatile.Read(ref next), requests);
    }

    private async Task SendOneAsync(Random random, CancellationToken cancellationToken)
    {
        using var request = NextRequest(random);
        try
        {
            using var response = await _http.SendAsync(request, cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            Count(((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (response.StatusCode == System.Net.HttpStatusCode.Accepted && request.RequestUri!.OriginalString is "/v1/generations" or "/v1/edits"
                && JsonNode.Parse(body)?["id"]?.GetValue<string>() is { } id)
            {
                lock (_accepted)
                {
                    _accepted.Add(id);
                }
            }
        }
        catch (Exception e) when (e is HttpRequestException or IOException || (e is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            Count("error");
        }
        catch (OperationCanceledException)
        {
            // the deadline: not an outcome
        }
    }

    private void Count(string outcome) => _outcomes.AddOrUpdate(outcome, 1, (_, n) => n + 1);

    private HttpRequestMessage NextRequest(Random random)
    {
        var roll = random.Next(100);
        string? known;
        lock (_accepted)
        {
            known = _accepted.Count == 0 ? null : _accepted[random.Next(_accepted.Count)];
        }

        return roll switch
        {
            < 22 => Json("/v1/generations", $$"""{"prompt":"load {{random.Next()}} [[run:300]]","num_images":{{random.Next(1, 5)}},"aspect_ratio":"16:9"}"""),
            < 30 when known is not null => new HttpRequestMessage(HttpMethod.Get, $"/v1/generations/{known}/status"),
            < 35 when known is not null => new HttpRequestMessage(HttpMethod.Get, $"/v1/generations/{known}/result"),
            < 38 when known is not null => new HttpRequestMessage(HttpMethod.Get, $"/v1/generations/{known}"),
            < 45 => Json("/v1/edits", $$"""{"prompt":"edit {{random.Next()}} [[run:300]]","image_urls":["data:image/png;base64,{{Convert.ToBase64String(_images[random.Next(3)])}}"]}"""),
            < 53 => Upload(_images[random.Next(_images.Length)], "image/png"),
            < 55 => Upload(Encoding.UTF8.GetBytes("not an image, whatever the name says"), "image/png"),
            < 60 => Proxied($$"""{"prompt":"proxied {{random.Next()}} [[run:300]]"}"""),
            < 64 => Json("/v1/generations", """{"prompt":"""),
            < 68 => Json("/v1/generations", "{}"),
            < 72 => Json("/v1/generations", """{"prompt":"x","num_images":99,"aspect_ratio":"7:3","output_format":"bmp"}"""),
            < 76 => Json("/v1/generations", $$"""{"prompt":"{{new string('p', 5_000)}}"}"""),
            // A few MB of JSON that is refused only once read: the allocations a fuzz run makes.
            < 80 => Json("/v1/generations", $$"""{"prompt":"{{new string('a', random.Next(1, 4) * 1024 * 1024)}}","num_images":9}"""),
            < 84 => Json("/v1/edits", $$"""{"prompt":"x","image_urls":["data:image/png;base64,{{new string('A', random.Next(1, 3) * 1024 * 1024)}}!"]}"""),
            < 88 => new HttpRequestMessage(HttpMethod.Post, "/v1/generations") { Content = new StringContent("prompt=hello", Encoding.UTF8, "text/plain") },
            < 92 => Unauthenticated(),
            < 96 => new HttpRequestMessage(HttpMethod.Get, $"/v1/generations/{Guid.NewGuid()}"),
            _ => new HttpRequestMessage(HttpMethod.Get, "/v1/usage"),
        };
    }

    private static HttpRequestMessage Json(string path, string json) =>
        new(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };

    private static HttpRequestMessage Upload(byte[] bytes, string declaredType)
    {
        var file = new ByteArrayContent(bytes);
        file.Headers.ContentType = new MediaTypeHeaderValue(declaredType);
        return new HttpRequestMessage(HttpMethod.Post, "/v1/files") { Content = new MultipartFormDataContent { { file, "file", "load.png" } } };
    }

    private static HttpRequestMessage Proxied(string json)
    {
        var request = Json("/api/fal/proxy", json);
        request.Headers.TryAddWithoutValidation("x-fal-target-url", ProxyTarget);
        return request;
    }

    private static HttpRequestMessage Unauthenticated()
    {
        var request = Json("/v1/generations", """{"prompt":"who am I"}""");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "not-a-client-key");
        return request;
    }

    private static byte[] NoisePng(int side)
    {
        using var bitmap = new SKBitmap(side, side);
        var random = new Random(side);
        var pixels = new byte[side * side * 4];
        random.NextBytes(pixels);
        System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    public void Dispose() => _http.Dispose();
}
