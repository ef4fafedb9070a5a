using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Gateway.Tests.Infrastructure;
using SkiaSharp;

namespace Gateway.Tests.Faults;

/// <summary>
/// A seeded, bounded fuzz of the routes a caller reaches: the /v1 JSON routes, the fal proxy and
/// <c>POST /v1/files</c>. Every answer must be below 500, every /v1 error a problem+json, and no
/// refused input may cost a call to fal (submit, run, cancel, storage initiate or upload).
/// The seed is printed in every failure, so a failing run can be replayed with <c>FUZZ_SEED</c>.
/// </summary>
public sealed class SeededFuzzTests(RedisServer redis)
{
    private const int RequestsPerTarget = 1_200;
    private static readonly TimeSpan TimeBudget = TimeSpan.FromSeconds(90);

    private static readonly int Seed =
        int.TryParse(Environment.GetEnvironmentVariable("FUZZ_SEED"), out var seed) ? seed : 20261129;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public Task Fuzz_V1JsonRoutes_NeverAnswer5xx_AlwaysProblemJson_AndRefusalsCostNothing() =>
        RunAsync(Seed, V1Request);

    [Fact]
    public Task Fuzz_FalProxy_NeverAnswers5xx_AndRefusalsCostNothing() =>
        RunAsync(Seed + 1, ProxyRequest);

    [Fact]
    public Task Fuzz_FileUploads_NeverAnswer5xx_AlwaysProblemJson_AndRefusalsCostNothing() =>
        RunAsync(Seed + 2, UploadRequest);

    private async Task RunAsync(int seed, Func<Random, FuzzCase> next)
    {
        await using var harness = await GatewayHarness.StartAsync(redis);
        using var client = harness.Client();
        var random = new Random(seed);
        var clock = Stopwatch.StartNew();
        var failures = new List<string>();
        var statuses = new Dictionary<int, int>();
        var sent = 0;

        for (var i = 0; i < RequestsPerTarget && clock.Elapsed < TimeBudget && failures.Count < 10; i++)
        {
            var fuzz = next(random);
            using var request = fuzz.Build();
            if (request is null)
            {
                continue; // HttpClient itself refuses to send this shape
            }

            var before = CostlyCalls(harness);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(15));
            HttpResponseMessage response;
            try
            {
                response = await client.SendAsync(request, timeout.Token);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                failures.Add($"#{i} {fuzz}: no answer ({e.GetType().Name}: {e.Message})");
                continue;
            }

            using (response)
            {
                sent++;
                var status = (int)response.StatusCode;
                statuses[status] = statuses.GetValueOrDefault(status) + 1;
                var body = await response.Content.ReadAsStringAsync(Ct);
                if (status >= 500)
                {
                    failures.Add($"#{i} {fuzz}: {status} {Clip(body)}");
                }

                if (status < 400 && fuzz.MustRefuse)
                {
                    failures.Add($"#{i} {fuzz}: an invalid input was accepted with {status} {Clip(body)}");
                }

                if (status >= 400 && fuzz.ProblemJson && !IsProblem(response, body, status) && !RefusedByKestrel(fuzz, response, body))
                {
                    failures.Add($"#{i} {fuzz}: {status} is not a problem+json: {response.Content.Headers.ContentType} {Clip(body)}");
                }

                // A refusal answers at once; any costly call to fal during it came from this request.
                if (status is >= 400 and < 500 && CostlyCalls(harness) != before)
                {
                    failures.Add($"#{i} {fuzz}: refused with {status} but fal was called ({before} -> {CostlyCalls(harness)})");
                }
            }
        }

        var summary = $"seed {seed}: {sent} requests in {clock.Elapsed.TotalSeconds:F1} s; statuses "
            + string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}×{s.Value}"));
        TestContext.Current.SendDiagnosticMessage(summary);
        Assert.True(failures.Count == 0, summary + "\n" + string.Join("\n", failures));
        Assert.True(sent >= 200, $"too few requests were sent to prove anything: {summary}");
        Assert.True(statuses.Keys.Any(s => s is >= 400 and < 500), $"the fuzz never produced a refusal: {summary}");
    }

    private static string CostlyCalls(GatewayHarness harness) =>
        $"submit={harness.Fal.SubmitCount} run={harness.Fal.RunCount} cancel={harness.Fal.CancelCount} "
        + $"initiate={harness.Fal.UploadCount} put={harness.Fal.UploadPutCount}";

    private static bool IsProblem(HttpResponseMessage response, string body, int status)
    {
        if (response.Content.Headers.ContentType?.MediaType != "application/problem+json")
        {
            return false;
        }

        try
        {
            using var json = JsonDocument.Parse(body);
            var root = json.RootElement;
            return root.TryGetProperty("type", out _) && root.TryGetProperty("title", out _)
                && root.TryGetProperty("status", out var s) && s.GetInt32() == status
                && (status != 400 || (root.TryGetProperty("errors", out var errors) && errors.EnumerateObject().Any()));
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>
    /// Kestrel refuses a path with an encoded NUL before any middleware runs: a bodiless 400 that closes
    /// the connection. No route (and so nothing of the gateway's, nor fal) sees such a request.
    /// </summary>
    private static bool RefusedByKestrel(FuzzCase fuzz, HttpResponseMessage response, string body) =>
        fuzz.Path.Contains("%00", StringComparison.Ordinal) && response.StatusCode == HttpStatusCode.BadRequest
        && body.Length == 0 && response.Headers.ConnectionClose == true;

    private static string Clip(string text) => text.Length <= 300 ? text : text[..300] + "…";

    // ---- the /v1 routes ----

    private static readonly string[] GetRoutes = ["", "/status", "/status?logs=true", "/status?logs=maybe", "/result", "/events"];

    private static FuzzCase V1Request(Random random)
    {
        switch (random.Next(10))
        {
            case < 6:
                var edit = random.Next(3) == 0;
                var path = edit ? "/v1/edits" : "/v1/generations";
                var body = JsonMutator.Body(random, edit);
                var contentType = ContentType(random);
                return new FuzzCase("POST", path, body.Text, contentType, Headers(random), ProblemJson: true, body.MustRefuse || !IsJson(contentType));
            case < 9:
                var route = GetRoutes[random.Next(GetRoutes.Length)];
                var id = Ids.Next(random);
                return route == "" && random.Next(4) == 0
                    ? new FuzzCase("POST", $"/v1/generations/{id}/cancel", null, null, Headers(random), ProblemJson: true)
                    : new FuzzCase("GET", $"/v1/generations/{id}{route}", null, null, Headers(random), ProblemJson: true);
            default:
                var query = random.Next(3) switch
                {
                    0 => $"?limit={Junk.Number(random)}",
                    1 => $"?cursor={Uri.EscapeDataString(Junk.Text(random, 200))}",
                    _ => $"?limit={Junk.Number(random)}&cursor={Uri.EscapeDataString(Junk.Text(random, 40))}",
                };
                return new FuzzCase("GET", random.Next(5) == 0 ? "/v1/usage" : "/v1/generations" + query, null, null, Headers(random), ProblemJson: true);
        }
    }

    /// <summary>Content types that may carry a JSON body; anything else must be refused (415).</summary>
    private static bool IsJson(string? contentType) =>
        contentType is "application/json" or "application/json; charset=utf-8" or "application/json; charset=latin1";

    private static string? ContentType(Random random) => random.Next(12) switch
    {
        0 => null,
        1 => "text/plain",
        2 => "application/json; charset=latin1",
        3 => "multipart/form-data; boundary=x",
        4 => "application/x-www-form-urlencoded",
        5 => "application/jsonx",
        6 => "application/json; charset=utf-8",
        _ => "application/json",
    };

    private static Dictionary<string, string> Headers(Random random)
    {
        var headers = new Dictionary<string, string>();
        if (random.Next(6) == 0)
        {
            headers["Idempotency-Key"] = random.Next(3) == 0 ? new string('k', random.Next(200, 400)) : Guid.NewGuid().ToString();
        }

        if (random.Next(6) == 0)
        {
            headers["Prefer"] = random.Next(4) switch
            {
                0 => "wait=abc",
                1 => "wait=-5",
                2 => "wait=99999999999999999999",
                _ => "respond-async, wait=0",
            };
        }

        if (random.Next(10) == 0)
        {
            headers["Last-Event-ID"] = Junk.Ascii(random, 60);
        }

        return headers;
    }

    // ---- the fal proxy ----

    private const string Model = "https://queue.fal.run/microsoft/mai-image-2.5";
    private const string Edit = "https://queue.fal.run/microsoft/mai-image-2.5/edit";

    private static readonly string[] Targets =
    [
        Model,
        Edit,
        "https://queue.fal.run/microsoft/mai-image-2.5/requests/{id}/status",
        "https://queue.fal.run/microsoft/mai-image-2.5/requests/{id}/status?logs=1",
        "https://queue.fal.run/microsoft/mai-image-2.5/requests/{id}",
        "https://queue.fal.run/microsoft/mai-image-2.5/requests/{id}/cancel",
        "https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3",
        "https://fal.run/microsoft/mai-image-2.5",
        "https://queue.fal.run/fal-ai/flux/dev",
        "https://evil.example/microsoft/mai-image-2.5",
    ];

    private static readonly string[] Methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

    private static FuzzCase ProxyRequest(Random random)
    {
        var target = Targets[random.Next(Targets.Length)].Replace("{id}", Ids.Next(random), StringComparison.Ordinal);
        target = random.Next(4) switch
        {
            0 => UrlMutator.Mutate(random, target),
            _ => target,
        };
        var method = random.Next(3) == 0 ? Methods[random.Next(Methods.Length)] : target.Contains("/requests/", StringComparison.Ordinal) ? (target.EndsWith("/cancel", StringComparison.Ordinal) ? "PUT" : "GET") : "POST";
        var headers = Headers(random);
        if (random.Next(15) != 0)
        {
            headers["x-fal-target-url"] = Junk.Ascii(target);
        }

        if (random.Next(8) == 0)
        {
            headers["x-fal-queue-priority"] = Junk.Ascii(random, 20);
        }

        var submit = JsonMutator.Body(random, target.EndsWith("/edit", StringComparison.Ordinal));
        var contentType = ContentType(random);
        string? body = method is "GET" or "OPTIONS" && random.Next(4) != 0 ? null
            : target.Contains("storage", StringComparison.Ordinal) && random.Next(2) == 0 ? """{"content_type":"image/png","file_name":"a.png"}"""
            : submit.Text;
        // An invalid body to a submit the allowlist would otherwise pass must be refused, as on /v1.
        var modelSubmit = method == "POST" && target is Model or Edit && headers.ContainsKey("x-fal-target-url");
        var mustRefuse = modelSubmit && body == submit.Text && (submit.MustRefuse || !IsJson(contentType));
        return new FuzzCase(method, "/api/fal/proxy", body, body is null ? null : contentType, headers, ProblemJson: false, mustRefuse);
    }

    // ---- POST /v1/files ----

    private static readonly byte[] Png = MakePng();

    private static FuzzCase UploadRequest(Random random)
    {
        var boundary = random.Next(8) == 0 ? Junk.Ascii(random, random.Next(1, 120)) : "b" + random.Next(1000);
        var builder = new MemoryStream();
        void Write(string text) => builder.Write(Encoding.UTF8.GetBytes(text));

        var parts = random.Next(6) switch
        {
            0 => 0,
            1 => 2,
            _ => 1,
        };
        if (random.Next(10) == 0)
        {
            Write(Junk.Text(random, 50) + "\r\n"); // a preamble
        }

        for (var p = 0; p < parts; p++)
        {
            Write($"--{boundary}\r\n");
            var name = random.Next(8) == 0 ? Junk.Text(random, 10) : "file";
            Write($"Content-Disposition: form-data; name=\"{name}\"; filename=\"{(random.Next(8) == 0 ? Junk.Text(random, 80) : "a.png")}\"\r\n");
            if (random.Next(10) == 0)
            {
                Write($"X-Long: {new string('h', random.Next(100, 20_000))}\r\n");
            }

            Write("Content-Type: image/png\r\n");
            if (random.Next(10) != 0)
            {
                Write("\r\n"); // the blank line that ends the part's headers
            }

            var content = random.Next(6) switch
            {
                0 => Encoding.UTF8.GetBytes(Junk.Text(random, 300)),
                1 => Png[..random.Next(1, Png.Length)],
                2 => Flip(random, Png),
                _ => Png,
            };
            builder.Write(content);
            Write("\r\n");
        }

        switch (random.Next(5))
        {
            case 0: break; // no closing boundary
            case 1: Write($"--{boundary}"); break; // the boundary without its closing dashes
            default: Write($"--{boundary}--\r\n"); break;
        }

        var bytes = builder.ToArray();
        if (random.Next(8) == 0)
        {
            bytes = bytes[..random.Next(0, bytes.Length + 1)]; // cut anywhere
        }

        var contentType = random.Next(10) switch
        {
            0 => "multipart/form-data",
            1 => "application/octet-stream",
            2 => $"multipart/form-data; boundary=\"{boundary}\"",
            3 => $"multipart/mixed; boundary={boundary}",
            _ => $"multipart/form-data; boundary={boundary}",
        };
        return new FuzzCase("POST", "/v1/files", bytes, contentType, [], ProblemJson: true);
    }

    private static byte[] Flip(Random random, byte[] source)
    {
        var copy = (byte[])source.Clone();
        for (var i = 0; i < random.Next(1, 8); i++)
        {
            copy[random.Next(copy.Length)] ^= (byte)random.Next(1, 256);
        }

        return copy;
    }

    private static byte[] MakePng()
    {
        using var bitmap = new SKBitmap(16, 12);
        bitmap.Erase(SKColors.SeaGreen);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>One generated request, printable for a failure message.</summary>
    private sealed record FuzzCase(
        string Method, string Path, object? Body, string? ContentType, Dictionary<string, string> Headers, bool ProblemJson, bool MustRefuse = false)
    {
        public HttpRequestMessage? Build()
        {
            try
            {
                var request = new HttpRequestMessage(new HttpMethod(Method), Path);
                if (Body is not null)
                {
                    request.Content = new ByteArrayContent(Body as byte[] ?? Encoding.UTF8.GetBytes((string)Body));
                    if (ContentType is not null)
                    {
                        request.Content.Headers.TryAddWithoutValidation("Content-Type", ContentType);
                    }
                }

                foreach (var (name, value) in Headers)
                {
                    request.Headers.TryAddWithoutValidation(name, value);
                }

                return request;
            }
            catch (UriFormatException)
            {
                return null;
            }
        }

        public override string ToString()
        {
            var body = Body switch
            {
                null => "",
                byte[] bytes => $" <{bytes.Length} bytes>",
                string text => " " + Clip(text),
                _ => "",
            };
            var headers = string.Join(" ", Headers.Select(h => $"{h.Key}: {Clip(h.Value)}"));
            return $"{Method} {Clip(Path)} [{ContentType}] {headers}{body}";
        }
    }

    private static class Ids
    {
        public static string Next(Random random) => random.Next(9) switch
        {
            0 => Guid.NewGuid().ToString(),
            1 => Uri.EscapeDataString(Junk.Text(random, 40)),
            2 => new string('a', random.Next(200, 3000)),
            3 => "..%2F..%2Fhealth",
            4 => "%00",
            5 => Uri.EscapeDataString("ü🙂\u202e"),
            6 => "abc-123",
            7 => "-",
            _ => Guid.NewGuid().ToString("N"),
        };
    }

    private static class UrlMutator
    {
        public static string Mutate(Random random, string url) => random.Next(10) switch
        {
            0 => url.Replace("https://", "http://", StringComparison.Ordinal),
            1 => url + "?" + Junk.Text(random, 30),
            2 => url.Replace("queue.fal.run", "queue.fal.run.evil.example", StringComparison.Ordinal),
            3 => url + "/../../x",
            4 => url.Insert(random.Next(8, url.Length), "%2f"),
            5 => url.ToUpperInvariant(),
            6 => url[..random.Next(1, url.Length)],
            7 => url.Replace("https://", "https://user:pw@", StringComparison.Ordinal),
            8 => url + "#" + Junk.Text(random, 10),
            _ => Junk.Text(random, 100),
        };
    }

    private static class Junk
    {
        private const string Alphabet = "abcXYZ019 _-./:?&=%\"'\\{}[]<>\t\u00e9\u4e2d\u0000\u0007\u001f\u007f\u2028\ud83d\ude00";

        public static string Text(Random random, int max)
        {
            var length = random.Next(0, max + 1);
            var builder = new StringBuilder(length);
            for (var i = 0; i < length; i++)
            {
                builder.Append(Alphabet[random.Next(Alphabet.Length)]);
            }

            // Never leave half a surrogate pair at the end: the text is sent as UTF-8.
            return builder.Length > 0 && char.IsHighSurrogate(builder[^1]) ? builder.ToString(0, builder.Length - 1) : builder.ToString();
        }

        /// <summary>Header values: HttpClient sends only ASCII, so anything else is percent-encoded.</summary>
        public static string Ascii(Random random, int max) => Ascii(Text(random, max));

        public static string Ascii(string text) =>
            string.Concat(text.Select(c => c is >= ' ' and < (char)127 or '\t' ? c.ToString() : $"%{(int)c:X2}"));

        public static string Number(Random random) => random.Next(8) switch
        {
            0 => "-1",
            1 => "0",
            2 => "1e3",
            3 => "99999999999999999999999",
            4 => "1.5",
            5 => "abc",
            6 => "",
            _ => random.Next(1, 200).ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
    }

    /// <summary>Valid submit bodies, then one to three mutations of the kinds hostile callers send.</summary>
    private static class JsonMutator
    {
        private static readonly string[] Ratios = ["auto", "16:9", "1:1", "9:16", "21:9", "7:3", "", "AUTO"];
        private static readonly string[] Formats = ["png", "jpeg", "webp", "gif", "PNG", ""];

        /// <summary>A body, and whether it breaks a rule for certain (so the gateway must refuse it).</summary>
        public static (string Text, bool MustRefuse) Body(Random random, bool edit)
        {
            var fields = new List<KeyValuePair<string, string>>
            {
                new("prompt", JsonSerializer.Serialize("a lighthouse at dusk " + random.Next(1000))),
            };
            if (random.Next(2) == 0)
            {
                fields.Add(new("num_images", random.Next(1, 5).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }

            if (random.Next(2) == 0)
            {
                fields.Add(new("aspect_ratio", JsonSerializer.Serialize(Ratios[random.Next(3)])));
            }

            if (random.Next(2) == 0)
            {
                fields.Add(new("output_format", JsonSerializer.Serialize(Formats[random.Next(3)])));
            }

            if (edit)
            {
                fields.Add(new("image_urls", """["https://v3.fal.media/files/x/input.png"]"""));
            }

            var mutations = random.Next(4); // 0: a valid body, which may be accepted
            for (var m = 0; m < mutations; m++)
            {
                Mutate(random, fields);
            }

            var mustRefuse = BreaksTheContract(fields, edit);

            var text = "{" + string.Join(",", fields.Select(f => JsonSerializer.Serialize(f.Key) + ":" + f.Value)) + "}";
            return random.Next(12) switch
            {
                0 => (text[..random.Next(0, text.Length)], true),
                1 => (new string('[', random.Next(64, 5000)), true),
                2 => ("\ufeff" + text, mustRefuse), // RFC 8259 lets a parser ignore a byte order mark
                3 => ("[" + text + "]", true),
                _ => (text, mustRefuse),
            };
        }

        private static readonly HashSet<string> Known = ["prompt", "num_images", "aspect_ratio", "output_format", "sync_mode", "image_urls"];

        /// <summary>
        /// True when the body breaks a rule for certain, whatever the rest holds: a name the contract does not
        /// have (names are case-sensitive), a name twice, a number, flag or list sent as a string, text that is
        /// not JSON, or a prompt without visible text or with control characters.
        /// </summary>
        private static bool BreaksTheContract(List<KeyValuePair<string, string>> fields, bool edit)
        {
            var names = fields.Select(f => f.Key).ToList();
            if (names.Distinct(StringComparer.Ordinal).Count() != names.Count || names.Any(n => !Known.Contains(n))
                || !names.Contains("prompt") || (edit && !names.Contains("image_urls")))
            {
                return true;
            }

            foreach (var (name, value) in fields)
            {
                if (value.StartsWith("\"\"", StringComparison.Ordinal)
                    || (name is "num_images" or "sync_mode" or "image_urls" && value.StartsWith('"')))
                {
                    return true;
                }

                if (name == "prompt" && value.StartsWith('"')
                    && JsonSerializer.Deserialize<string>(value) is { } prompt
                    && (string.IsNullOrWhiteSpace(prompt) || prompt.Any(c => char.IsControl(c) && c is not ('\t' or '\r' or '\n'))))
                {
                    return true;
                }
            }

            return false;
        }

        private static void Mutate(Random random, List<KeyValuePair<string, string>> fields)
        {
            if (fields.Count == 0)
            {
                fields.Add(new("x_" + Junk.Ascii(random, 12), Value(random)));
                return;
            }

            var index = random.Next(fields.Count);
            var (key, value) = (fields[index].Key, fields[index].Value);
            switch (random.Next(12))
            {
                case 0: fields.RemoveAt(index); break;
                case 1: fields[index] = new(key.ToUpperInvariant(), value); break;
                case 2: fields.Add(new(key, value)); break; // a duplicate property
                case 3: fields[index] = new(key, Value(random)); break;
                case 4: fields.Add(new(Junk.Text(random, 12), Value(random))); break;
                case 5: fields[index] = new("prompt", JsonSerializer.Serialize(Junk.Text(random, 40))); break;
                case 6: fields[index] = new("prompt", JsonSerializer.Serialize(new string('p', random.Next(3990, 4100)))); break;
                case 7: fields[index] = new("num_images", Junk.Number(random)); break;
                case 8: fields[index] = new("image_urls", ImageUrls(random)); break;
                case 9: fields[index] = new("sync_mode", Value(random)); break;
                case 10: fields[index] = new(key, "\"" + value + "\""); break; // a number, array or string quoted again
                default: fields[index] = new("aspect_ratio", JsonSerializer.Serialize(Ratios[random.Next(Ratios.Length)])); break;
            }
        }

        private static string Value(Random random) => random.Next(8) switch
        {
            0 => "null",
            1 => "true",
            2 => "[]",
            3 => "{}",
            4 => "-0.0",
            5 => "1e400",
            6 => JsonSerializer.Serialize(Junk.Text(random, 30)),
            _ => "[" + string.Join(",", Enumerable.Repeat("1", random.Next(0, 50))) + "]",
        };

        private static string ImageUrls(Random random) => random.Next(9) switch
        {
            0 => """["data:image/png;base64,AAAA"]""",
            1 => """["data:image/png;base64,!!!!"]""",
            2 => """["https://example.com/a.png\r\nX-Injected: 1"]""",
            3 => """["https://v3.fal.media/a.png","https://v3.fal.media/b.png"]""",
            4 => """["file:///etc/passwd"]""",
            5 => """["http://169.254.169.254/latest/meta-data"]""",
            6 => "[" + JsonSerializer.Serialize("data:image/png;base64," + Convert.ToBase64String(Png)) + "]",
            7 => "[]",
            _ => "[" + JsonSerializer.Serialize(Junk.Text(random, 80)) + "]",
        };
    }
}
