using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace FalEmulator.Tests;

/// <summary>A started stand-in with short timings and a client that holds the key.</summary>
internal sealed class Emulator : IAsyncDisposable
{
    public const string Model = "microsoft/mai-image-2.5";
    public const string EditModel = "microsoft/mai-image-2.5/edit";

    private Emulator(FalEmulatorHost host, FalEmulatorOptions options)
    {
        Host = host;
        Options = options;
        Client = new HttpClient { BaseAddress = host.BaseUrl, Timeout = TimeSpan.FromSeconds(30) };
        Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Key", options.Key);
        Anonymous = new HttpClient { BaseAddress = host.BaseUrl, Timeout = TimeSpan.FromSeconds(30) };
    }

    public FalEmulatorHost Host { get; }

    public FalEmulatorOptions Options { get; }

    public HttpClient Client { get; }

    public HttpClient Anonymous { get; }

    public FalEmulatorState State => Host.State;

    public static async Task<Emulator> Start(Action<FalEmulatorOptions>? configure = null)
    {
        var options = new FalEmulatorOptions
        {
            Key = "test-key-id:test-key-secret",
            QueueTime = TimeSpan.FromMilliseconds(50),
            RunTime = TimeSpan.FromMilliseconds(100),
            ImageLongSide = 128,
            SlowDelay = TimeSpan.FromMilliseconds(400),
            StreamPingInterval = TimeSpan.FromMilliseconds(100),
            WebhookRetryBackoff = TimeSpan.FromMilliseconds(50),
            WebhookFaultDelay = TimeSpan.FromMilliseconds(300),
        };
        configure?.Invoke(options);
        var host = await FalEmulatorHost.StartAsync(options, cancellationToken: TestContext.Current.CancellationToken);
        return new Emulator(host, options);
    }

    public async Task<(HttpResponseMessage Response, JsonElement Body)> Submit(object input, string model = Model, string query = "")
    {
        var response = await Client.PostAsync($"{model}{query}", JsonBody(input), Ct);
        return (response, await ReadJson(response));
    }

    /// <summary>Submits and expects acceptance; returns the submit answer.</summary>
    public async Task<JsonElement> Accepted(object input, string model = Model, string query = "")
    {
        var (response, body) = await Submit(input, model, query);
        Assert.Equal(200, (int)response.StatusCode);
        return body;
    }

    public async Task<(HttpResponseMessage Response, JsonElement Body)> Get(string url)
    {
        var response = await Client.GetAsync(url, Ct);
        return (response, await ReadJson(response));
    }

    /// <summary>Polls the status URL until COMPLETED and returns that status object.</summary>
    public async Task<JsonElement> WaitCompleted(JsonElement submitted, string query = "")
    {
        var statusUrl = submitted.GetProperty("status_url").GetString()!;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            var (response, body) = await Get(statusUrl + query);
            if ((int)response.StatusCode == 200 && body.GetProperty("status").GetString() == "COMPLETED")
            {
                return body;
            }

            await Task.Delay(20, Ct);
        }

        throw new TimeoutException($"{statusUrl} did not complete");
    }

    public async Task<(HttpResponseMessage Response, JsonElement Body)> Result(JsonElement submitted) =>
        await Get(submitted.GetProperty("response_url").GetString()!);

    public async Task<JsonElement> CompletedResult(object input, string model = Model)
    {
        var submitted = await Accepted(input, model);
        await WaitCompleted(submitted);
        var (response, body) = await Result(submitted);
        Assert.Equal(200, (int)response.StatusCode);
        return body;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        Anonymous.Dispose();
        await Host.DisposeAsync();
    }

    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static StringContent JsonBody(object input) =>
        new(JsonSerializer.Serialize(input), Encoding.UTF8, "application/json");

    public static async Task<JsonElement> ReadJson(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        if (string.IsNullOrWhiteSpace(text))
        {
            return default;
        }

        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }

    /// <summary>The single detail item of a fal 422 answer.</summary>
    public static JsonElement OnlyIssue(JsonElement body)
    {
        var detail = body.GetProperty("detail");
        Assert.Equal(JsonValueKind.Array, detail.ValueKind);
        return Assert.Single(detail.EnumerateArray());
    }

    public static string Loc(JsonElement issue) => string.Join('.', issue.GetProperty("loc").EnumerateArray().Select(e => e.GetString()));

    public static async Task Eventually(Func<bool> condition, string what, int timeoutMs = 10_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out waiting for {what}");
            }

            await Task.Delay(20, Ct);
        }
    }

    public static JsonContent Json<T>(T value) => JsonContent.Create(value);
}
