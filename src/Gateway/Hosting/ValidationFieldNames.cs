using System.Collections.Frozen;
using System.Text.Json.Serialization.Metadata;

namespace Gateway.Hosting;

/// <summary>A request type whose validation errors are named by its JSON names; registered by the feature that reads it.</summary>
internal sealed record ValidatedJsonType(JsonTypeInfo TypeInfo);

/// <summary>
/// .NET's validation names errors by C# property (<c>NumImages</c>); callers send JSON (<c>num_images</c>).
/// This maps one to the other from the serializer's own metadata, so the two can never disagree.
/// </summary>
internal sealed class ValidationFieldNames(IEnumerable<ValidatedJsonType> types)
{
    private readonly FrozenDictionary<string, string> _jsonNames = types
        .SelectMany(type => type.TypeInfo.Properties)
        .Where(p => p.AttributeProvider is System.Reflection.MemberInfo)
        .Select(p => (Clr: ((System.Reflection.MemberInfo)p.AttributeProvider!).Name, Json: p.Name))
        .DistinctBy(p => p.Clr)
        .ToFrozenDictionary(p => p.Clr, p => p.Json);

    public IDictionary<string, string[]> ToJsonNames(IDictionary<string, string[]> errors) =>
        errors.ToDictionary(e => ToJsonName(e.Key), e => e.Value);

    private string ToJsonName(string key)
    {
        var end = key.IndexOfAny(['[', '.']);
        var head = end < 0 ? key : key[..end];
        return _jsonNames.TryGetValue(head, out var json) ? json + key[head.Length..] : key;
    }
}

internal static class GatewayJson
{
    /// <summary>
    /// A feature's source-generated JSON types, for the HTTP JSON options (the contract's settings: names exactly as
    /// written, numbers as JSON numbers, no duplicate properties); <paramref name="validated"/> are request types whose
    /// validation errors name their JSON fields.
    /// </summary>
    public static IServiceCollection AddGatewayJson(this IServiceCollection services, IJsonTypeInfoResolver resolver, params JsonTypeInfo[] validated)
    {
        services.ConfigureHttpJsonOptions(options => options.SerializerOptions.TypeInfoResolverChain.Insert(0, resolver));
        foreach (var type in validated)
        {
            services.AddSingleton(new ValidatedJsonType(type));
        }

        return services;
    }
}
