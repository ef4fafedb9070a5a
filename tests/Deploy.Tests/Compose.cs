using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Deploy.Tests;

/// <summary>docker-compose.yml, with compose's variable interpolation for the values tests resolve.</summary>
internal static partial class Compose
{
    public static JsonObject File { get; } = Yaml.LoadSingle(Repo.Read("docker-compose.yml"), "docker-compose.yml");

    public static JsonObject Service(string name)
    {
        var service = File["services"]?[name] as JsonObject;
        Assert.True(service is not null, $"docker-compose.yml has no service '{name}'.");
        return service;
    }

    /// <summary>A service's environment as written, from either the map or the list form.</summary>
    public static IReadOnlyDictionary<string, string> Environment(string service)
    {
        var environment = Service(service)["environment"];
        if (environment is JsonArray list)
        {
            return list.Select(e => e.Text() ?? "").Select(e => e.Split('=', 2))
                .ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "", StringComparer.Ordinal);
        }

        return environment.StringMap().ToDictionary(p => p.Key, p => p.Value ?? "", StringComparer.Ordinal);
    }

    /// <summary>A service's environment after interpolation with <paramref name="variables"/> only.</summary>
    public static IReadOnlyDictionary<string, string> ResolvedEnvironment(string service, IReadOnlyDictionary<string, string> variables) =>
        Environment(service).ToDictionary(p => p.Key, p => Interpolate(p.Value, variables), StringComparer.Ordinal);

    /// <summary>Every string in the file, interpolated, so a missing required variable anywhere shows.</summary>
    public static void InterpolateEverything(IReadOnlyDictionary<string, string> variables) => Walk(File, variables);

    /// <summary>KEY=VALUE lines as compose reads an --env-file (no quotes are used in ours).</summary>
    public static IReadOnlyDictionary<string, string> ReadEnvFile(string relative) =>
        Repo.Read(relative).Split('\n')
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split('=', 2))
            .ToDictionary(p => p[0].Trim(), p => p.Length > 1 ? p[1].Trim() : "", StringComparer.Ordinal);

    public static string Interpolate(string value, IReadOnlyDictionary<string, string> variables) =>
        Variable().Replace(value, match =>
        {
            if (match.Value == "$$")
            {
                return "$";
            }

            var name = match.Groups["name"].Value;
            var op = match.Groups["op"].Value;
            var argument = match.Groups["arg"].Value;
            var set = variables.TryGetValue(name, out var actual);
            var nonEmpty = set && actual!.Length > 0;
            return op switch
            {
                ":-" => nonEmpty ? actual! : argument,
                "-" => set ? actual! : argument,
                ":?" => nonEmpty ? actual! : throw new RequiredVariableException(name, argument),
                "?" => set ? actual! : throw new RequiredVariableException(name, argument),
                ":+" => nonEmpty ? argument : "",
                "+" => set ? argument : "",
                _ => set ? actual! : "",
            };
        });

    private static void Walk(JsonNode? node, IReadOnlyDictionary<string, string> variables)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (_, value) in obj)
                {
                    Walk(value, variables);
                }

                break;
            case JsonArray array:
                foreach (var item in array)
                {
                    Walk(item, variables);
                }

                break;
            case JsonValue value when value.TryGetValue<string>(out var text):
                Interpolate(text, variables);
                break;
        }
    }

    [GeneratedRegex(@"\$\$|\$\{(?<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?<op>:?[-?+])(?<arg>[^}]*))?\}|\$(?<name>[A-Za-z_][A-Za-z0-9_]*)")]
    private static partial Regex Variable();
}

internal sealed class RequiredVariableException(string name, string message)
    : Exception($"required variable {name} is missing a value: {message}")
{
    public string Name { get; } = name;
}
