using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Gateway.Benchmarks.Throughput;

/// <summary>
/// The framework's ceiling on this machine: a bare ASP.NET Core minimal API (no auth, no logging, no metrics) whose
/// one route answers a small JSON of the gateway's status size and shape. Nothing the gateway does per request can
/// be faster than this, so its figures are divided by this one's.
/// </summary>
internal sealed class CeilingApp : IAsyncDisposable
{
    private readonly WebApplication _app;

    private CeilingApp(WebApplication app, Uri url)
    {
        _app = app;
        Url = url;
    }

    public Uri Url { get; }

    public static async Task<CeilingApp> StartAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, CeilingJsonContext.Default));
        var app = builder.Build();
        var answer = new CeilingStatus("0b1e5c3a9d2f4e6a8c7b5d3f1a2e4c6b", "COMPLETED", null,
            new CeilingLinks("/v1/generations/0b1e5c3a9d2f4e6a8c7b5d3f1a2e4c6b", "/v1/generations/0b1e5c3a9d2f4e6a8c7b5d3f1a2e4c6b/status",
                "/v1/generations/0b1e5c3a9d2f4e6a8c7b5d3f1a2e4c6b/result"));
        app.MapGet("/status", () => TypedResults.Ok(answer));
        await app.StartAsync(cancellationToken);
        var address = app.Urls.Single();
        return new CeilingApp(app, new Uri(new Uri(address), "/status"));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

internal sealed record CeilingStatus(string Id, string Status, int? QueuePosition, CeilingLinks Links);

internal sealed record CeilingLinks(string Self, string Status, string Result);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(CeilingStatus))]
internal sealed partial class CeilingJsonContext : JsonSerializerContext;
