using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Gateway.Tests.Infrastructure;

public static class HttpExtensions
{
    public static Task<HttpResponseMessage> PostJsonAsync(this HttpClient client, string path, string json) =>
        client.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"), TestContext.Current.CancellationToken);

    public static Task<HttpResponseMessage> PostJsonAsync(this HttpClient client, string path, object body) =>
        client.PostAsJsonAsync(path, body, TestContext.Current.CancellationToken);

    public static async Task<JsonNode> JsonAsync(this HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        try
        {
            return JsonNode.Parse(text) ?? throw new InvalidOperationException("null body");
        }
        catch (JsonException e)
        {
            throw new InvalidOperationException($"{(int)response.StatusCode} body is not JSON: {text[..Math.Min(text.Length, 500)]}", e);
        }
    }

    /// <summary>Submits and returns the generation id, asserting the 202.</summary>
    public static async Task<string> SubmitAsync(this HttpClient client, object body, string path = "/v1/generations")
    {
        using var response = await client.PostJsonAsync(path, body);
        var json = await response.JsonAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"submit answered {(int)response.StatusCode}: {json}");
        return json["id"]!.GetValue<string>();
    }

    /// <summary>Polls the status route until the generation ends; returns the last status.</summary>
    public static async Task<JsonNode> WaitUntilDoneAsync(this HttpClient client, string id, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            using var response = await client.GetAsync($"/v1/generations/{id}/status", TestContext.Current.CancellationToken);
            var json = await response.JsonAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"status answered {(int)response.StatusCode}: {json}");
            if (json["status"]!.GetValue<string>() is "COMPLETED" or "FAILED")
            {
                return json;
            }

            Assert.True(DateTime.UtcNow < deadline, $"generation {id} did not end in time; last status {json}");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }

    public static string Field(this JsonNode problem) =>
        string.Join(",", problem["errors"]?.AsObject().Select(p => p.Key) ?? []);
}
