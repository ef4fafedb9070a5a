using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Gateway.Tests.Infrastructure;

namespace Gateway.Benchmarks;

/// <summary>What one event stream saw: when its first event arrived and when it read the terminal one.</summary>
internal sealed record StreamOutcome(string Id, DateTimeOffset ConnectedAt, DateTimeOffset EndedAt, string Terminal);

/// <summary>One internal client of the gateway, with a connection per open event stream.</summary>
internal sealed class BenchmarkClient : IDisposable
{
    private readonly HttpClient _http;

    public BenchmarkClient(Uri gateway, string key)
    {
        _http = new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = int.MaxValue,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2),
            ConnectTimeout = TimeSpan.FromSeconds(10),
        })
        {
            BaseAddress = gateway,
            Timeout = Timeout.InfiniteTimeSpan, // streams stay open; the run's own deadline bounds everything
        };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
    }

    public async Task<string> SubmitAsync(string prompt, CancellationToken cancellationToken)
    {
        using var response = await _http.PostAsJsonAsync(new Uri("/v1/generations", UriKind.Relative), new SubmitBody(prompt), cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (response.StatusCode != HttpStatusCode.Accepted)
        {
            throw new InvalidOperationException($"submit answered {(int)response.StatusCode}: {text}");
        }

        return JsonNode.Parse(text)!["id"]!.GetValue<string>();
    }

    /// <summary>Reads <c>/events</c> until the terminal event; <paramref name="connected"/> runs at the first event.</summary>
    public async Task<StreamOutcome> WatchAsync(string id, Action? connected, CancellationToken cancellationToken)
    {
        using var response = await _http.GetAsync(new Uri($"/v1/generations/{id}/events", UriKind.Relative), HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"events of {id} answered {(int)response.StatusCode}");
        }

        var reader = new ServerSentEventReader(await response.Content.ReadAsStreamAsync(cancellationToken));
        DateTimeOffset? first = null;
        var seen = new List<string>();
        while (await reader.NextAsync(cancellationToken) is { } next)
        {
            seen.Add(next.Id ?? next.Event);
            var now = DateTimeOffset.UtcNow;
            if (first is null)
            {
                first = now;
                connected?.Invoke();
            }

            if (next.Event is "completed" or "failed")
            {
                return new StreamOutcome(id, first.Value, now, next.Event);
            }
        }

        throw new InvalidOperationException($"the event stream of {id} ended without a terminal event after {first?.ToString("O") ?? "no event"} "
            + $"(events: {string.Join(",", seen)}; retry hints: {string.Join(",", reader.RetryHints)}; comments: {string.Join(",", reader.Comments)})");
    }

    public void Dispose() => _http.Dispose();

    private sealed record SubmitBody([property: System.Text.Json.Serialization.JsonPropertyName("prompt")] string Prompt);
}
