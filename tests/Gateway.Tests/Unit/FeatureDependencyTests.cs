using System.Reflection;
using System.Reflection.Emit;
using Gateway.Hosting;

namespace Gateway.Tests.Unit;

/// <summary>
/// The feature folders (namespaces <c>Gateway.X</c>) lean on each other in one direction only, and Hosting on none of
/// them: read from the compiled gateway (signatures and method bodies' IL), so a type met only through <c>var</c>, an
/// extension method or a fully qualified name counts as much as one named in a <c>using</c>.
/// </summary>
public sealed class FeatureDependencyTests
{
    private static readonly Assembly GatewayAssembly = typeof(GatewayOptions).Assembly;

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(field => (OpCode)field.GetValue(null)!)
        .ToDictionary(op => op.Value);

    private const BindingFlags Declared =
        BindingFlags.DeclaredOnly | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static;

    [Fact]
    public void Hosting_UsesNoFeatureFolder()
    {
        var uses = Dependencies()["Hosting"];

        Assert.True(uses.Count == 0, $"Hosting uses feature types: {string.Join("; ", uses.Select(u => $"{u.Key} ({u.Value})"))}");
    }

    [Fact]
    public void FeatureFolders_HaveNoDependencyCycle()
    {
        var graph = Dependencies();

        var cycle = FindCycle(graph);

        Assert.True(cycle is null, cycle is null ? "" : "Feature folders depend on each other in a cycle: "
            + string.Join(" -> ", cycle.Zip(cycle.Skip(1), (from, to) => $"{from} ({graph[from][to]})")) + $" -> {cycle[^1]}");
    }

    [Fact]
    public void Scan_SeesAFeatureMetOnlyInsideAMethodBody()
    {
        // GenerationReconciler names FalUpstreamException only in a catch clause and FalQueueClient only in its constructor:
        // the scan must see such uses, or the two tests above could pass while a cycle is there.
        var generations = Dependencies()["Generations"];

        Assert.Contains("Upstream", generations.Keys);
        Assert.Contains("Storage", generations.Keys);
        Assert.DoesNotContain("Proxy", generations.Keys);
        Assert.DoesNotContain("Webhooks", generations.Keys);
    }

    [Fact]
    public void FindCycle_NamesTheFoldersOfACycle()
    {
        var graph = new Dictionary<string, Dictionary<string, string>>
        {
            ["A"] = new() { ["B"] = "a" },
            ["B"] = new() { ["C"] = "b" },
            ["C"] = new() { ["A"] = "c" },
            ["D"] = new() { ["A"] = "d" },
        };

        Assert.Equal(["A", "B", "C", "A"], FindCycle(graph));
        Assert.Null(FindCycle(new Dictionary<string, Dictionary<string, string>> { ["A"] = new() { ["B"] = "a" }, ["B"] = new() }));
    }

    /// <summary>Folder to the folders its types use, each with one example use ("Type -> Type") for the failure message.</summary>
    private static Dictionary<string, Dictionary<string, string>> Dependencies()
    {
        var graph = new Dictionary<string, Dictionary<string, string>>();
        foreach (var type in GatewayAssembly.GetTypes())
        {
            if (FolderOf(type) is not { } folder)
            {
                continue;
            }

            var uses = graph.TryGetValue(folder, out var known) ? known : graph[folder] = [];
            foreach (var used in UsedTypes(type).SelectMany(Expand))
            {
                if (FolderOf(used) is { } other && other != folder)
                {
                    uses.TryAdd(other, $"{type.FullName} -> {used.FullName}");
                }
            }
        }

        return graph;
    }

    private static string? FolderOf(Type type) =>
        type.Namespace is { } ns && ns.StartsWith("Gateway.", StringComparison.Ordinal) ? ns.Split('.')[1] : null;

    private static IEnumerable<Type> UsedTypes(Type type)
    {
        if (type.BaseType is { } baseType)
        {
            yield return baseType;
        }

        foreach (var contract in type.GetInterfaces())
        {
            yield return contract;
        }

        foreach (var attribute in type.CustomAttributes)
        {
            yield return attribute.AttributeType;
        }

        foreach (var field in type.GetFields(Declared))
        {
            yield return field.FieldType;
        }

        foreach (var property in type.GetProperties(Declared))
        {
            yield return property.PropertyType;
        }

        foreach (var method in type.GetMethods(Declared).Cast<MethodBase>().Concat(type.GetConstructors(Declared)))
        {
            if (method is MethodInfo { ReturnType: var returnType })
            {
                yield return returnType;
            }

            foreach (var parameter in method.GetParameters())
            {
                yield return parameter.ParameterType;
            }

            foreach (var used in InBody(method))
            {
                yield return used;
            }
        }
    }

    /// <summary>The types the IL of <paramref name="method"/> names: in calls, field accesses, casts, typeof, catch clauses.</summary>
    private static IEnumerable<Type> InBody(MethodBase method)
    {
        var body = method.GetMethodBody();
        if (body is null)
        {
            yield break;
        }

        foreach (var clause in body.ExceptionHandlingClauses)
        {
            if (clause.Flags == ExceptionHandlingClauseOptions.Clause)
            {
                yield return clause.CatchType!;
            }
        }

        foreach (var local in body.LocalVariables)
        {
            yield return local.LocalType;
        }

        var il = body.GetILAsByteArray()!;
        var typeArguments = method.DeclaringType is { IsGenericType: true } declaring ? declaring.GetGenericArguments() : null;
        var methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : null;
        for (var i = 0; i < il.Length;)
        {
            var op = il[i] == 0xFE ? OpCodesByValue[unchecked((short)(0xFE00 | il[i + 1]))] : OpCodesByValue[il[i]];
            i += op.Size;
            if (op.OperandType is OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineType or OperandType.InlineTok)
            {
                var member = method.Module.ResolveMember(BitConverter.ToInt32(il, i), typeArguments, methodArguments);
                switch (member)
                {
                    case Type used:
                        yield return used;
                        break;
                    case FieldInfo field:
                        yield return field.DeclaringType!;
                        yield return field.FieldType;
                        break;
                    case MethodInfo called:
                        yield return called.DeclaringType!;
                        yield return called.ReturnType;
                        foreach (var argument in called.IsGenericMethod ? called.GetGenericArguments() : [])
                        {
                            yield return argument;
                        }

                        break;
                    case ConstructorInfo constructor:
                        yield return constructor.DeclaringType!;
                        break;
                }
            }

            i += op.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + (4 * BitConverter.ToInt32(il, i)),
                _ => 4,
            };
        }
    }

    /// <summary>A type and the types it is made of: element types, generic arguments.</summary>
    private static IEnumerable<Type> Expand(Type type)
    {
        if (type.IsGenericParameter)
        {
            yield break;
        }

        yield return type;
        if (type.HasElementType)
        {
            foreach (var inner in Expand(type.GetElementType()!))
            {
                yield return inner;
            }
        }

        if (type.IsConstructedGenericType)
        {
            foreach (var inner in type.GetGenericArguments().SelectMany(Expand))
            {
                yield return inner;
            }
        }
    }

    /// <summary>A path that comes back to where it started (first folder repeated at the end), or null.</summary>
    private static List<string>? FindCycle(Dictionary<string, Dictionary<string, string>> graph)
    {
        var done = new HashSet<string>();
        var path = new List<string>();

        List<string>? Visit(string folder)
        {
            if (path.IndexOf(folder) is var at and >= 0)
            {
                return [.. path[at..], folder];
            }

            if (!done.Add(folder))
            {
                return null;
            }

            path.Add(folder);
            foreach (var next in graph.TryGetValue(folder, out var uses) ? uses.Keys.Order(StringComparer.Ordinal) : Enumerable.Empty<string>())
            {
                if (Visit(next) is { } cycle)
                {
                    return cycle;
                }
            }

            path.RemoveAt(path.Count - 1);
            return null;
        }

        return graph.Keys.Order(StringComparer.Ordinal).Select(Visit).FirstOrDefault(cycle => cycle is not null);
    }
}
