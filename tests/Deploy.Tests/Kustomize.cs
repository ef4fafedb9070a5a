using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Deploy.Tests;

/// <summary>Renders the kustomize overlays under deploy/overlays with kubectl, once per overlay.</summary>
internal static class Kustomize
{
    private const string InstallHint =
        "kubectl 1.27 or later is needed to render deploy/overlays/* (they use kustomize components and `patches`) " +
        "and was not found on PATH; .ci/run installs one when missing. Or set KUBECTL to a kubectl binary.";

    private static readonly ConcurrentDictionary<string, Lazy<IReadOnlyList<JsonObject>>> Rendered = new();

    public static IReadOnlyList<string> OverlayNames { get; } =
    [
        .. Directory.GetDirectories(Repo.PathOf("deploy/overlays"))
            .Where(dir => File.Exists(Path.Combine(dir, "kustomization.yaml")))
            .Select(Path.GetFileName)
            .OfType<string>()
            .Order(StringComparer.Ordinal),
    ];

    public static IReadOnlyList<JsonObject> Render(string overlay) =>
        Rendered.GetOrAdd(overlay, name => new Lazy<IReadOnlyList<JsonObject>>(() => RenderNow(name))).Value;

    private static IReadOnlyList<JsonObject> RenderNow(string overlay)
    {
        var directory = Repo.PathOf($"deploy/overlays/{overlay}");
        var kubectl = FindKubectl() ?? throw new InvalidOperationException(InstallHint);

        var start = new ProcessStartInfo(kubectl)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("kustomize");
        start.ArgumentList.Add(directory);

        using var process = Process.Start(start)
            ?? throw new InvalidOperationException($"Could not start {kubectl}.");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"`{kubectl} kustomize {directory}` did not finish within 2 minutes.");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"`{kubectl} kustomize {directory}` failed with exit code {process.ExitCode}:\n{stderr.Result}");
        }

        // A current kubectl warns about fields kustomize deprecated (bases, patchesJson6902, patchesStrategicMerge, …):
        // an overlay renders with nothing on stderr, so the next kubectl that drops those fields still renders it.
        if (stderr.Result.Trim() is { Length: > 0 } warnings)
        {
            throw new InvalidOperationException($"`{kubectl} kustomize {directory}` printed warnings:\n{warnings}");
        }

        return Yaml.LoadDocuments(stdout, $"the rendering of deploy/overlays/{overlay}");
    }

    private static string? FindKubectl()
    {
        var configured = Environment.GetEnvironmentVariable("KUBECTL");
        if (!string.IsNullOrEmpty(configured))
        {
            return File.Exists(configured)
                ? configured
                : throw new InvalidOperationException($"KUBECTL is set to {configured}, which does not exist.");
        }

        var name = OperatingSystem.IsWindows() ? "kubectl.exe" : "kubectl";
        return (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);
    }
}

/// <summary>One rendered overlay, with the objects the tests look at most.</summary>
internal sealed class RenderedOverlay(string name, IReadOnlyList<JsonObject> objects)
{
    public const string AppName = "mai-image-gateway";
    public const string SecretName = "mai-image-gateway-secrets";

    public string Name { get; } = name;

    public IReadOnlyList<JsonObject> Objects { get; } = objects;

    public static RenderedOverlay Of(string overlay) => new(overlay, Kustomize.Render(overlay));

    public IEnumerable<JsonObject> OfKind(string kind) =>
        Objects.Where(o => o["kind"].Text() == kind);

    public JsonObject Single(string kind)
    {
        var matches = OfKind(kind).ToList();
        Assert.True(matches.Count == 1, $"deploy/overlays/{Name} should render exactly one {kind}, found {matches.Count}.");
        return matches[0];
    }

    public JsonObject Deployment => Single("Deployment");

    public JsonObject PodSpec => (JsonObject)Deployment["spec"]!["template"]!["spec"]!;

    public JsonObject Container
    {
        get
        {
            var containers = PodSpec["containers"].Objects().ToList();
            Assert.True(containers.Count == 1, $"deploy/overlays/{Name}: the Deployment should have one container, found {containers.Count}.");
            return containers[0];
        }
    }

    public IReadOnlyDictionary<string, string?> PodLabels =>
        Deployment["spec"]!["template"]!["metadata"]!["labels"].StringMap().ToDictionary();

    /// <summary>The container's port named <c>http</c>.</summary>
    public long HttpContainerPort
    {
        get
        {
            var port = Container["ports"].Objects().FirstOrDefault(p => p["name"].Text() == "http");
            Assert.True(port is not null, $"deploy/overlays/{Name}: the container declares no port named http.");
            return (long)port["containerPort"]!;
        }
    }

    /// <summary>A port reference (name or number) resolved against the container's declared ports.</summary>
    public long? ResolveContainerPort(JsonNode? reference)
    {
        if (reference is JsonValue value && value.TryGetValue<long>(out var number))
        {
            return number;
        }

        var name = reference.Text();
        var port = Container["ports"].Objects().FirstOrDefault(p => p["name"].Text() == name);
        return port is null ? null : (long)port["containerPort"]!;
    }
}
