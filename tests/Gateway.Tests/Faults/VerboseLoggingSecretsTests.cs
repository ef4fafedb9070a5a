using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Gateway.Tests.Infrastructure;
using Gateway.Tests.Process;
using Serilog.Events;
using SkiaSharp;

namespace Gateway.Tests.Faults;

/// <summary>
/// Issue 9, point 5: with every level turned to Verbose, as someone debugging would, no log event shows the
/// FAL key (whole, or either half) or a client key: not in a message, not in any property at any depth,
/// not on the console of the real process. One class in the process collection: one test runs a process.
/// </summary>
[Collection(nameof(GatewayProcesses))]
public sealed class VerboseLoggingSecretsTests(RedisServer redis, PublishedGateway published)
{
    private const string Model = "https://queue.fal.run/microsoft/mai-image-2.5";
    private const string Requests = Model + "/requests/";
    private const string Initiate = "https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3";

    /// <summary>The categories that log HTTP traffic, and everything else, at Verbose.</summary>
    private static readonly string[] VerboseCategories =
        ["System.Net.Http.HttpClient", "Microsoft.Extensions.Http", "Yarp", "Microsoft.AspNetCore", "Polly", "Microsoft", "System"];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string SourceContext(LogEvent e) =>
        e.Properties.TryGetValue("SourceContext", out var value) && value is ScalarValue { Value: string name } ? name : "";

    [Fact]
    public async Task VerboseLogging_EveryCallThatReachesFal_NoEventShowsAKey()
    {
        var settings = VerboseCategories.ToDictionary(c => $"Serilog:MinimumLevel:Override:{c}", _ => (string?)"Verbose");
        settings["Serilog:MinimumLevel:Default"] = "Verbose";
        await using var harness = await GatewayHarness.StartAsync(redis, settings: settings, webhooks: true);
        using var proxyClient = harness.Client(key: null);
        proxyClient.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Key", GatewayHarness.BetaKey); // as @fal-ai/client sends it

        await CallEveryRouteThatReachesFalAsync(harness.Client(), proxyClient);

        // The HTTP categories did log at their most verbose (else this test proves nothing).
        foreach (var category in new[] { "System.Net.Http.HttpClient", "Yarp", "Microsoft.AspNetCore", "Polly" })
        {
            Assert.True(harness.LogEvents.Any(e => SourceContext(e).StartsWith(category, StringComparison.Ordinal)), $"Nothing was logged by {category}.");
        }

        Assert.Contains(harness.LogEvents, e => e.Level <= LogEventLevel.Debug && SourceContext(e).StartsWith("System.Net.Http.HttpClient", StringComparison.Ordinal));
        foreach (var secret in harness.Secrets)
        {
            var found = harness.LogOccurrences(secret).Distinct().ToList();
            Assert.True(found.Count == 0, $"A secret ({secret[..6]}…) appeared in {found.Count} places in the logs:\n{string.Join('\n', found.Take(20))}");
        }
    }

    [Fact]
    public async Task VerboseLogging_GatewayProcess_ConsoleJsonShowsNoKey()
    {
        var settings = VerboseCategories.ToDictionary(c => $"Serilog__MinimumLevel__Override__{c}", _ => "Verbose");
        settings["Serilog__MinimumLevel__Default"] = "Verbose";
        settings["Serilog__ConsoleMinimumLevel"] = "Verbose";
        await using var world = await ProcessHarness.StartAsync(redis, published.Executable, settings: settings, webhooks: true, keptLines: int.MaxValue);
        using var client = world.Client();
        using var proxyClient = world.Client(key: null);
        proxyClient.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Key", ProcessHarness.ClientKey);

        await CallEveryRouteThatReachesFalAsync(client, proxyClient);
        await Task.Delay(500, Ct); // the last request-log lines leave after their responses

        var output = world.Gateway.Output;
        Assert.True(output.Contains("\"@l\":\"Verbose\"", StringComparison.Ordinal) && output.Contains("\"SourceContext\":\"System.Net.Http.HttpClient", StringComparison.Ordinal),
            $"The console shows no Verbose events or none from HttpClient: the levels did not reach it.\n{output[..Math.Min(output.Length, 4000)]}");
        var falKey = world.FalKey;
        foreach (var secret in new[] { falKey, falKey.Split(':')[0], falKey.Split(':')[1], ProcessHarness.ClientKey })
        {
            var lines = output.Split('\n').Where(l => l.Contains(secret, StringComparison.Ordinal)).ToList();
            Assert.True(lines.Count == 0, $"A secret ({secret[..6]}…) appeared on {lines.Count} console lines, e.g.:\n{string.Join('\n', lines.Take(5))}");
        }
    }

    /// <summary>Submit, status, result, cancel, an upload, and the proxy's submit, status, result and storage initiate.</summary>
    private static async Task CallEveryRouteThatReachesFalAsync(HttpClient client, HttpClient proxyClient)
    {
        var id = await client.SubmitAsync(new { prompt = "a lighthouse, logged verbosely" });
        await client.WaitUntilDoneAsync(id);
        using (var result = await client.GetAsync($"/v1/generations/{id}/result", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, result.StatusCode);
        }

        var slow = await client.SubmitAsync(new { prompt = "a slow one [[run:20000]]" });
        using (var cancel = await client.PostAsync($"/v1/generations/{slow}/cancel", null, Ct))
        {
            Assert.True(cancel.StatusCode == HttpStatusCode.Accepted, $"cancel answered {(int)cancel.StatusCode}: {await cancel.Content.ReadAsStringAsync(Ct)}");
        }

        using (var upload = await client.PostAsync("/v1/files", PngForm(), Ct))
        {
            Assert.True(upload.StatusCode == HttpStatusCode.Created, $"upload answered {(int)upload.StatusCode}: {await upload.Content.ReadAsStringAsync(Ct)}");
        }

        var proxied = (await ProxyOkAsync(proxyClient, HttpMethod.Post, Model, """{"prompt":"a proxied lighthouse"}"""))["request_id"]!.GetValue<string>();
        for (var i = 0; (await ProxyOkAsync(proxyClient, HttpMethod.Get, $"{Requests}{proxied}/status"))["status"]!.GetValue<string>() != "COMPLETED"; i++)
        {
            Assert.True(i < 300, $"the proxied request {proxied} did not complete");
            await Task.Delay(50, Ct);
        }

        await ProxyOkAsync(proxyClient, HttpMethod.Get, $"{Requests}{proxied}");
        await ProxyOkAsync(proxyClient, HttpMethod.Post, Initiate, """{"content_type":"image/png","file_name":"in.png"}""");
    }

    private static async Task<System.Text.Json.Nodes.JsonNode> ProxyOkAsync(HttpClient client, HttpMethod method, string target, string? json = null)
    {
        using var request = new HttpRequestMessage(method, "/api/fal/proxy");
        request.Headers.TryAddWithoutValidation("x-fal-target-url", target);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        using var response = await client.SendAsync(request, Ct);
        var body = await response.JsonAsync();
        // fal answers a status 202 while the request is queued.
        Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Accepted, $"{method} {target} through the proxy answered {(int)response.StatusCode}: {body}");
        return body;
    }

    private static MultipartFormDataContent PngForm()
    {
        using var bitmap = new SKBitmap(16, 16);
        bitmap.Erase(SKColors.SteelBlue);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        var file = new ByteArrayContent(data.ToArray());
        file.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        return new MultipartFormDataContent { { file, "file", "verbose.png" } };
    }
}
