using System.Globalization;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Deploy.Tests;

/// <summary>
/// YAML documents as <see cref="JsonNode"/> trees, so tests can navigate them with indexers.
/// Plain (unquoted) scalars become numbers, booleans or null as YAML 1.2's core schema says;
/// quoted scalars stay strings, so "8080" and 8080 can be told apart where it matters.
/// </summary>
internal static class Yaml
{
    public static IReadOnlyList<JsonObject> LoadDocuments(string yaml, string source)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new InvalidOperationException($"{source} is not valid YAML: {e.Message}", e);
        }

        var documents = new List<JsonObject>();
        foreach (var document in stream.Documents)
        {
            if (ToJson(document.RootNode) is JsonObject obj)
            {
                documents.Add(obj);
            }
        }

        return documents;
    }

    public static JsonObject LoadSingle(string yaml, string source)
    {
        var documents = LoadDocuments(yaml, source);
        Assert.True(documents.Count == 1, $"{source} should hold exactly one YAML mapping, found {documents.Count}.");
        return documents[0];
    }

    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode mapping => ToObject(mapping),
        YamlSequenceNode sequence => new JsonArray([.. sequence.Children.Select(ToJson)]),
        YamlScalarNode scalar => ToScalar(scalar),
        _ => throw new NotSupportedException($"Unsupported YAML node {node.NodeType} at {node.Start}."),
    };

    private static JsonObject ToObject(YamlMappingNode mapping)
    {
        var obj = new JsonObject();
        foreach (var (key, value) in mapping.Children)
        {
            var name = ((YamlScalarNode)key).Value ?? "";
            obj[name] = ToJson(value);
        }

        return obj;
    }

    private static JsonValue? ToScalar(YamlScalarNode scalar)
    {
        var text = scalar.Value ?? "";
        if (scalar.Style is not ScalarStyle.Plain)
        {
            return JsonValue.Create(text);
        }

        return text switch
        {
            "" or "~" or "null" or "Null" or "NULL" => null,
            "true" or "True" or "TRUE" => JsonValue.Create(true),
            "false" or "False" or "FALSE" => JsonValue.Create(false),
            _ when long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number)
                => JsonValue.Create(number),
            _ => JsonValue.Create(text),
        };
    }
}

internal static class JsonNodeExtensions
{
    /// <summary>The node's value as text, whatever its JSON type; null when absent.</summary>
    public static string? Text(this JsonNode? node) => node switch
    {
        null => null,
        JsonValue value when value.TryGetValue<string>(out var s) => s,
        JsonValue value => value.ToJsonString(),
        _ => node.ToJsonString(),
    };

    public static IEnumerable<JsonObject> Objects(this JsonNode? node) =>
        node is JsonArray array ? array.OfType<JsonObject>() : [];

    public static IEnumerable<KeyValuePair<string, string?>> StringMap(this JsonNode? node) =>
        node is JsonObject obj
            ? obj.Select(p => new KeyValuePair<string, string?>(p.Key, p.Value.Text()))
            : [];
}
