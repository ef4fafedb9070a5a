using System.Net;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests;

/// <summary>
/// docs/openapi.json is the contract frontends generate clients from and the tests check every answer against: it must be
/// exactly what the gateway serves, so every contract change shows in review. <c>UPDATE_OPENAPI=1</c> rewrites it.
/// </summary>
public sealed class OpenApiDocumentTests
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    [Fact]
    public async Task ServedDocument_IsTheCommittedDocument()
    {
        await using var harness = await GatewayHarness.StartAsync(redis: null);
        using var response = await harness.Client(key: null).GetAsync("/swagger/v1/swagger.json", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var served = JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!;
        var path = OpenApiContract.CommittedPath;

        if (Environment.GetEnvironmentVariable("UPDATE_OPENAPI") == "1")
        {
            await File.WriteAllTextAsync(path, Canonical(served), TestContext.Current.CancellationToken);
            TestContext.Current.SendDiagnosticMessage($"Wrote {path} from the served document.");
            return;
        }

        Assert.True(File.Exists(path), $"{path} is missing. Create it with: {OpenApiContract.RegenerateCommand}");
        var committed = JsonNode.Parse(await File.ReadAllTextAsync(path, TestContext.Current.CancellationToken))!;
        var differences = Differences(committed, served, "").Take(25).ToList();
        Assert.True(differences.Count == 0,
            "The gateway serves a different OpenAPI document than docs/openapi.json (committed → served):\n  "
            + string.Join("\n  ", differences)
            + $"\n\nIf the change is meant, regenerate the committed document and review its diff: {OpenApiContract.RegenerateCommand}");
        Assert.True(Canonical(committed) == await File.ReadAllTextAsync(path, TestContext.Current.CancellationToken),
            $"docs/openapi.json holds the served document but is not in its canonical form (2-space indent, final newline); rewrite it with: {OpenApiContract.RegenerateCommand}");
    }

    [Fact]
    public void CommittedDocument_NamesEachOperationOnceAndEveryRouteStatusHasItsContent()
    {
        var document = JsonNode.Parse(File.ReadAllText(OpenApiContract.CommittedPath))!;
        var operations = document["paths"]!.AsObject().SelectMany(p => p.Value!.AsObject().Select(o => o.Value!)).ToList();
        var ids = operations.Select(o => o["operationId"]!.GetValue<string>()).ToList();
        Assert.Equal(ids.Count, ids.Distinct(StringComparer.Ordinal).Count());
        Assert.NotEmpty(document["servers"]!.AsArray());
        foreach (var operation in operations)
        {
            foreach (var (status, response) in operation["responses"]!.AsObject())
            {
                var noBody = status is "204" or "304" || (status is "502" or "504" && operation["operationId"]!.GetValue<string>().StartsWith("Proxy", StringComparison.Ordinal));
                Assert.True(noBody || response!["content"] is JsonObject { Count: > 0 },
                    $"{operation["operationId"]} {status} documents no content");
            }
        }
    }

    /// <summary>An example that does not match its own schema would teach frontends the wrong shape.</summary>
    [Fact]
    public void CommittedDocument_SchemaExamplesMatchTheirSchemas()
    {
        var schemas = JsonNode.Parse(File.ReadAllText(OpenApiContract.CommittedPath))!["components"]!["schemas"]!.AsObject();
        var withExamples = schemas.Where(s => s.Value!["example"] is JsonObject).ToList();
        Assert.Contains(withExamples, s => s.Key == "GenerationResponse");
        Assert.Contains(withExamples, s => s.Key == "Problem");
        foreach (var (name, schema) in withExamples)
        {
            var violations = OpenApiContract.Committed.CheckAgainstSchema(name, schema!["example"]!);
            Assert.True(violations.Count == 0, string.Join("\n", violations));
        }
    }

    private static string Canonical(JsonNode document) => document.ToJsonString(Indented) + "\n";

    /// <summary>Where two documents differ, as JSON pointers: what the reviewer of a contract change looks at.</summary>
    internal static IEnumerable<string> Differences(JsonNode? committed, JsonNode? served, string at)
    {
        switch (committed, served)
        {
            case (JsonObject a, JsonObject b):
                foreach (var (name, value) in a)
                {
                    var pointer = $"{at}/{name.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal)}";
                    if (!b.ContainsKey(name))
                    {
                        yield return $"removed {pointer}";
                        continue;
                    }

                    foreach (var difference in Differences(value, b[name], pointer))
                    {
                        yield return difference;
                    }
                }

                foreach (var (name, _) in b.Where(p => !a.ContainsKey(p.Key)))
                {
                    yield return $"added {at}/{name}";
                }

                break;
            case (JsonArray a, JsonArray b) when a.Count == b.Count:
                for (var i = 0; i < a.Count; i++)
                {
                    foreach (var difference in Differences(a[i], b[i], $"{at}/{i}"))
                    {
                        yield return difference;
                    }
                }

                break;
            default:
                if (!JsonNode.DeepEquals(committed, served))
                {
                    yield return $"changed {at}: {Short(committed)} → {Short(served)}";
                }

                break;
        }
    }

    private static string Short(JsonNode? node)
    {
        var text = node?.ToJsonString() ?? "null";
        return text.Length > 120 ? text[..120] + "…" : text;
    }
}
