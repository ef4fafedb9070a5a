using System.Collections.Frozen;
using System.Text.Json.Serialization.Metadata;
using Gateway.Generations;

namespace Gateway.Hosting;

/// <summary>
/// .NET's validation names errors by C# property (<c>NumImages</c>); callers send JSON (<c>num_images</c>).
/// This maps one to the other from the serializer's own metadata, so the two can never disagree.
/// </summary>
internal static class ValidationFieldNames
{
    private static readonly FrozenDictionary<string, string> JsonNames = new JsonTypeInfo[]
        {
            GatewayJsonContext.Default.GenerateRequest,
            GatewayJsonContext.Default.EditRequest,
        }
        .SelectMany(info => info.Properties)
        .Where(p => p.AttributeProvider is System.Reflection.MemberInfo)
        .Select(p => (Clr: ((System.Reflection.MemberInfo)p.AttributeProvider!).Name, Json: p.Name))
        .DistinctBy(p => p.Clr)
        .ToFrozenDictionary(p => p.Clr, p => p.Json);

    public static IDictionary<string, string[]> ToJsonNames(IDictionary<string, string[]> errors) =>
        errors.ToDictionary(e => ToJsonName(e.Key), e => e.Value);

    private static string ToJsonName(string key)
    {
        var end = key.IndexOfAny(['[', '.']);
        var head = end < 0 ? key : key[..end];
        return JsonNames.TryGetValue(head, out var json) ? json + key[head.Length..] : key;
    }
}
