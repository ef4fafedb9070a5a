using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gateway.Tests.Process;
using Json.Schema;

namespace Gateway.Tests.Infrastructure;

/// <summary>One answer as the gateway sent it. <see cref="BodyRead"/> is false for a stream the check did not read (SSE on the client side).</summary>
public sealed record ObservedAnswer(
    string Method, string Path, int Status, string? ContentType, IReadOnlyDictionary<string, string> Headers, byte[] Body, bool BodyRead = true);

/// <summary>
/// The committed OpenAPI document (<c>docs/openapi.json</c>) as a checker of real answers: the route and status must be
/// documented, the body must validate against the documented schema (JSON Schema 2020-12, by JsonSchema.Net), each event
/// of an event stream against the schema <c>x-events</c> names, the content type must be a documented one, required
/// headers must be present and the contract's headers must not appear where the document does not list them.
/// </summary>
public sealed class OpenApiContract
{
    /// <summary>The one command that rewrites docs/openapi.json from the gateway's served document.</summary>
    public const string RegenerateCommand =
        "UPDATE_OPENAPI=1 dotnet test --project tests/Gateway.Tests/Gateway.Tests.csproj --filter-class Gateway.Tests.OpenApiDocumentTests";

    /// <summary>Headers whose presence the contract promises per route and status.</summary>
    private static readonly string[] ContractHeaders =
        ["Location", "Retry-After", "RateLimit", "RateLimit-Policy", "Idempotent-Replayed", "Preference-Applied", "WWW-Authenticate"];

    private static readonly Lazy<OpenApiContract> CommittedDocument = new(() => Parse(File.ReadAllText(CommittedPath)));

    private readonly JsonObject _paths;
    private readonly JsonObject _definitions;
    private readonly ConcurrentDictionary<string, JsonSchema> _schemas = new(StringComparer.Ordinal);

    private OpenApiContract(JsonObject document)
    {
        _paths = document["paths"]!.AsObject();
        _definitions = document["components"]?["schemas"]?.AsObject() ?? [];
    }

    public static string CommittedPath => Path.Combine(ProcessGateway.RepoRoot, "docs", "openapi.json");

    public static OpenApiContract Committed => CommittedDocument.Value;

    /// <summary>A checker for <paramref name="openApiJson"/>: its schema references become references into <c>$defs</c>.</summary>
    public static OpenApiContract Parse(string openApiJson) =>
        new(JsonNode.Parse(openApiJson.Replace("\"#/components/schemas/", "\"#/$defs/", StringComparison.Ordinal))!.AsObject());

    /// <summary>What about <paramref name="answer"/> the document does not say; empty when it matches.</summary>
    public IReadOnlyList<string> Check(ObservedAnswer answer)
    {
        var path = answer.Path.Split('?')[0];
        if (IsOutsideTheContract(answer.Method, path))
        {
            return [];
        }

        var method = answer.Method.ToLowerInvariant();
        var template = Match(path);
        var operation = template is null ? null : _paths[template]?[method] as JsonObject;
        var media = MediaType(answer.ContentType);
        var where = $"{answer.Method.ToUpperInvariant()} {template ?? path} → {answer.Status} {media ?? "(no body)"}"
            + (template is not null && template != path ? $" (for {answer.Method.ToUpperInvariant()} {path})" : "");
        if (operation is null)
        {
            // Not a route of the contract: only the gateway's own "no such route / method" problem may answer.
            return answer.Status is 404 or 405 && media == "application/problem+json"
                ? Validate(where, "#/$defs/Problem", new JsonObject { ["$ref"] = "#/$defs/Problem" }, answer.Body)
                : [$"{where}: {answer.Method.ToUpperInvariant()} {path} is not a route of docs/openapi.json"];
        }

        var responses = operation["responses"]!.AsObject();
        var key = answer.Status.ToString(CultureInfo.InvariantCulture);
        var response = responses[key] as JsonObject ?? responses["default"] as JsonObject;
        if (response is null)
        {
            return [$"{where}: status {answer.Status} is not documented for this route (documented: {string.Join(", ", responses.Select(r => r.Key))})"];
        }

        var responseKey = responses.ContainsKey(key) ? key : "default";
        var violations = new List<string>();
        CheckHeaders(where, response, answer, violations);
        var content = response["content"] as JsonObject;
        if (!answer.BodyRead)
        {
            if (content?[media ?? ""] is null)
            {
                violations.Add($"{where}: Content-Type {media} is not documented (documented: {Describe(content)})");
            }

            return violations;
        }

        if (answer.Body.Length == 0)
        {
            if (content is { Count: > 0 })
            {
                violations.Add($"{where}: the answer has no body, but the document gives one ({Describe(content)})");
            }

            return violations;
        }

        if (media is null || content?[media] is not JsonObject documented)
        {
            violations.Add($"{where}: a body of type {media ?? "(none)"} is sent, but the document gives {Describe(content)}");
            return violations;
        }

        var pointer = $"#/paths/{Escape(template!)}/{method}/responses/{responseKey}/content/{Escape(media)}/schema";
        if (media == "text/event-stream")
        {
            violations.AddRange(CheckEvents(where, documented, pointer, answer.Body));
        }
        else if (IsJson(media) && documented["schema"] is { } schema)
        {
            violations.AddRange(Validate(where, pointer, schema, answer.Body));
        }

        return violations;
    }

    /// <summary>What about <paramref name="instance"/> the named component schema does not allow; empty when it matches.</summary>
    public IReadOnlyList<string> CheckAgainstSchema(string schemaName, JsonNode instance) =>
        Validate($"components/schemas/{schemaName}", $"#/$defs/{schemaName}", new JsonObject { ["$ref"] = $"#/$defs/{schemaName}" },
            Encoding.UTF8.GetBytes(instance.ToJsonString()));

    /// <summary>Operational routes (health, metrics), the playground and Swagger itself: not part of the API's contract.</summary>
    public static bool IsOutsideTheContract(string path) =>
        path is "/" or "/health/live" or "/health/ready" or "/metrics" || path.StartsWith("/swagger", StringComparison.Ordinal);

    /// <summary>CORS preflights are answered by the CORS middleware before any route: protocol, not an operation of the API.</summary>
    public static bool IsOutsideTheContract(string method, string path) =>
        string.Equals(method, "OPTIONS", StringComparison.OrdinalIgnoreCase) || IsOutsideTheContract(path);

    /// <summary>The document's path template for <paramref name="path"/>; literal segments win over parameters.</summary>
    private string? Match(string path)
    {
        var segments = path.Split('/');
        return _paths.Select(p => p.Key)
            .Select(template => (Template: template, Parts: template.Split('/')))
            .Where(t => t.Parts.Length == segments.Length
                && t.Parts.Zip(segments).All(s => s.First.StartsWith('{') || string.Equals(s.First, Uri.UnescapeDataString(s.Second), StringComparison.Ordinal)))
            .OrderBy(t => t.Parts.Count(p => p.StartsWith('{')))
            .Select(t => t.Template)
            .FirstOrDefault();
    }

    private static void CheckHeaders(string where, JsonObject response, ObservedAnswer answer, List<string> violations)
    {
        var documented = response["headers"] as JsonObject ?? [];
        foreach (var (name, header) in documented)
        {
            var present = answer.Headers.TryGetValue(name, out var value);
            if (header?["required"]?.GetValue<bool>() == true && !present)
            {
                violations.Add($"{where}: header {name} is required by the document but was not sent");
            }

            if (present && header?["schema"]?["type"]?.GetValue<string>() == "integer" && !long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                violations.Add($"{where}: header {name} is '{value}', the document says an integer");
            }
        }

        foreach (var name in ContractHeaders)
        {
            if (answer.Headers.ContainsKey(name) && !documented.Any(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)))
            {
                violations.Add($"{where}: header {name} is sent but not documented for this answer");
            }
        }
    }

    private IEnumerable<string> CheckEvents(string where, JsonObject media, string pointer, byte[] body)
    {
        if (media["x-events"] is not JsonObject events)
        {
            yield break;
        }

        foreach (var (name, data) in ServerSentEventsOf(Encoding.UTF8.GetString(body)))
        {
            if (events[name] is not { } schema)
            {
                yield return $"{where}: event '{name}' is sent but x-events does not name it (named: {string.Join(", ", events.Select(e => e.Key))})";
                continue;
            }

            foreach (var violation in Validate($"{where} event '{name}'", $"{pointer}/x-events/{name}", schema, Encoding.UTF8.GetBytes(data)))
            {
                yield return violation;
            }
        }
    }

    /// <summary>The named events of a stream (comments, retry and id lines aside) with their data.</summary>
    private static IEnumerable<(string Name, string Data)> ServerSentEventsOf(string text)
    {
        foreach (var block in text.Replace("\r\n", "\n", StringComparison.Ordinal).Split("\n\n"))
        {
            string? name = null;
            var data = new StringBuilder();
            foreach (var line in block.Split('\n'))
            {
                if (line.StartsWith("event:", StringComparison.Ordinal))
                {
                    name = line[6..].Trim();
                }
                else if (line.StartsWith("data:", StringComparison.Ordinal))
                {
                    data.Append(line[5..].TrimStart());
                }
            }

            if (data.Length > 0)
            {
                yield return (name ?? "message", data.ToString());
            }
        }
    }

    private List<string> Validate(string where, string pointer, JsonNode schemaNode, byte[] body)
    {
        JsonDocument instance;
        try
        {
            instance = JsonDocument.Parse(body);
        }
        catch (JsonException e)
        {
            return [$"{where}: the body is not JSON ({e.Message}): {Excerpt(body)}"];
        }

        using (instance)
        {
            var schema = _schemas.GetOrAdd(pointer, _ => Build(schemaNode));
            var results = schema.Evaluate(instance.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List, RequireFormatValidation = true });
            if (results.IsValid)
            {
                return [];
            }

            var reasons = (results.Details ?? [])
                .Where(d => d.Errors is { Count: > 0 })
                .SelectMany(d => d.Errors!.Select(e => $"{(d.InstanceLocation.ToString() is { Length: > 0 } at ? at : "(the body)")}: {e.Value} [{e.Key} at {d.EvaluationPath}]"))
                .Distinct()
                .Take(8)
                .ToList();
            return [$"{where}: the body does not match the documented schema ({pointer}):\n    {string.Join("\n    ", reasons)}\n    body: {Excerpt(body)}"];
        }
    }

    private JsonSchema Build(JsonNode schemaNode)
    {
        var root = new JsonObject
        {
            ["$schema"] = "https://json-schema.org/draft/2020-12/schema",
            ["$defs"] = _definitions.DeepClone(),
        };
        foreach (var (name, value) in schemaNode.AsObject())
        {
            root[name] = value?.DeepClone();
        }

        using var document = JsonDocument.Parse(root.ToJsonString());
        return JsonSchema.Build(document.RootElement.Clone(), new BuildOptions(), new Uri($"urn:uuid:{Guid.NewGuid()}"));
    }

    private static string? MediaType(string? contentType) =>
        contentType is { Length: > 0 } ? contentType.Split(';')[0].Trim().ToLowerInvariant() : null;

    private static bool IsJson(string media) => media == "application/json" || media.EndsWith("+json", StringComparison.Ordinal);

    private static string Describe(JsonObject? content) =>
        content is { Count: > 0 } ? string.Join(", ", content.Select(c => c.Key)) : "no body";

    private static string Escape(string segment) => segment.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    private static string Excerpt(byte[] body)
    {
        var text = Encoding.UTF8.GetString(body, 0, Math.Min(body.Length, 600));
        return body.Length > 600 ? text + "…" : text;
    }
}

/// <summary>
/// The contract's findings for one test's gateways: every answer is checked as it goes out, and the test fails
/// (when its harness or gateway is disposed) naming each answer that the document does not describe.
/// </summary>
public sealed class ContractViolations(OpenApiContract? contract = null)
{
    private readonly ConcurrentQueue<string> _found = new();

    /// <summary>The document answers are checked against: docs/openapi.json unless a test gives another.</summary>
    public OpenApiContract Contract => contract ?? OpenApiContract.Committed;

    public IReadOnlyCollection<string> Found => _found;

    public void Check(ObservedAnswer answer)
    {
        if (OpenApiContract.IsOutsideTheContract(answer.Method, answer.Path.Split('?')[0]))
        {
            return;
        }

        IReadOnlyList<string> violations;
        try
        {
            violations = Contract.Check(answer);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            violations = [$"{answer.Method} {answer.Path} → {answer.Status}: the contract check failed: {e}"];
        }

        foreach (var violation in violations)
        {
            _found.Enqueue(violation);
        }
    }

    private static string Kind(string violation) =>
        System.Text.RegularExpressions.Regex.Replace(violation.Split('\n')[0], @" \(for [^)]*\)", "");

    public void ThrowIfAny()
    {
        if (_found.IsEmpty)
        {
            return;
        }

        // One example of each kind of mismatch (route, status, what is wrong), with how often it happened.
        var all = _found.ToArray();
        var kinds = all.GroupBy(Kind).Select(g => g.Count() == 1 ? g.First() : $"{g.First()}\n    ({g.Count()} answers like this one)").ToList();
        Assert.Fail($"The gateway sent {all.Length} answer(s) that docs/openapi.json does not describe:\n\n{string.Join("\n\n", kinds.Take(12))}"
            + (kinds.Count > 12 ? $"\n\n… and {kinds.Count - 12} more kinds." : "")
            + "\n\nFix the code or its OpenAPI metadata (src/Gateway: Produces…/ProducesProblemFor/WithResponseHeader, the contract records), "
            + $"then regenerate the document: {OpenApiContract.RegenerateCommand}");
    }
}
