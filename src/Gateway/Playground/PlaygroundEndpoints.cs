using System.Reflection;

namespace Gateway.Playground;

/// <summary><c>GET /</c>: a small page where a person with a client key types a prompt and sees the images.</summary>
internal static class PlaygroundEndpoints
{
    private static readonly Lazy<byte[]> Page = new(() =>
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Gateway.Playground.playground.html")
            ?? throw new InvalidOperationException("The playground page is not embedded.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    });

    public static IEndpointConventionBuilder MapPlayground(this IEndpointRouteBuilder app) =>
        app.MapGet("/", () => Results.Bytes(Page.Value, "text/html; charset=utf-8"))
            .WithName("Playground")
            .ExcludeFromDescription();
}
