using System.Text.Json.Nodes;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests;

/// <summary>
/// docs/openapi.json as its users meet it: linted by Redocly with the recommended rules (tests/OpenApi), and turned into a
/// typed client by openapi-typescript + openapi-fetch (clients/typescript) whose example compiles under
/// <c>tsc --noEmit --strict</c> without a cast and then runs against a live gateway.
/// </summary>
public sealed class OpenApiToolingTests(RedisServer redis)
{
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromMinutes(3);

    private static readonly Dictionary<string, string?> Quiet = new()
    {
        ["REDOCLY_TELEMETRY"] = "off",
        ["REDOCLY_SUPPRESS_UPDATE_NOTICE"] = "true",
        ["NODE_OPTIONS"] = null,
    };

    [Fact]
    public async Task RedoclyLint_WithTheRecommendedRules_ReportsNoError()
    {
        var folder = NodeTools.Folder("OpenApi");
        await NodeTools.PrepareAsync(folder, Path.Combine("@redocly", "cli", "package.json"));

        var (exit, output, stdout) = await NodeTools.RunWithStdoutAsync(
            "node", [Path.Combine("node_modules", "@redocly", "cli", "bin", "cli.js"), "lint", OpenApiContract.CommittedPath, "--format=json"],
            folder, ToolTimeout, Quiet);

        Assert.True(stdout.Contains('{', StringComparison.Ordinal), $"redocly lint printed no report (exit {exit}):\n{output}");
        var report = JsonNode.Parse(stdout[stdout.IndexOf('{', StringComparison.Ordinal)..])!;
        var problems = report["problems"]!.AsArray()
            .Select(p => $"{p!["severity"]} {p["ruleId"]}: {p["message"]} at {p["location"]?[0]?["pointer"]}").ToList();
        Assert.True(exit == 0 && report["totals"]!["errors"]!.GetValue<int>() == 0,
            $"redocly lint found errors in docs/openapi.json (exit {exit}):\n{string.Join("\n", problems)}");
        TestContext.Current.SendDiagnosticMessage($"redocly lint: {report["totals"]!.ToJsonString()} {string.Join("; ", problems)}");
    }

    [Fact]
    public async Task TypeScriptClient_GeneratedFromTheDocument_CompilesStrictWithoutCasts_AndRunsAgainstTheGateway()
    {
        var folder = NodeTools.RepoFolder("clients", "typescript");
        await NodeTools.PrepareAsync(folder, Path.Combine("openapi-typescript", "package.json"));

        await Step(folder, "openapi-typescript", Path.Combine("node_modules", "openapi-typescript", "bin", "cli.js"),
            OpenApiContract.CommittedPath, "--output", Path.Combine("src", "gateway.ts"));
        await Step(folder, "the cast check", "no-casts.mjs", Path.Combine("src", "example.ts"));
        await Step(folder, "tsc --noEmit --strict", Path.Combine("node_modules", "typescript", "bin", "tsc"), "--noEmit", "--strict", "-p", ".");
        await Step(folder, "tsc (build)", Path.Combine("node_modules", "typescript", "bin", "tsc"), "-p", ".");

        await using var harness = await GatewayHarness.StartAsync(redis);
        var environment = new Dictionary<string, string?>(Quiet)
        {
            ["GATEWAY_URL"] = harness.GatewayUrl.ToString().TrimEnd('/'),
            ["CLIENT_KEY"] = GatewayHarness.AlphaKey,
        };
        var (exit, output) = await NodeTools.RunAsync("node", [Path.Combine("dist", "example.js")], folder, environment, ToolTimeout);

        Assert.True(exit == 0, $"the TypeScript example failed against the gateway ({exit}):\n{output}");
        Assert.Contains("the retry replayed it", output, StringComparison.Ordinal);
        Assert.Contains("refused as expected: 400", output, StringComparison.Ordinal);
        Assert.Contains("example finished", output, StringComparison.Ordinal);
        Assert.Equal(1, harness.Fal.AcceptedSubmitCount); // the retried submit was replayed, never sent twice
    }

    private static async Task Step(string folder, string name, params string[] arguments)
    {
        var (exit, output) = await NodeTools.RunAsync("node", arguments, folder, Quiet, ToolTimeout);
        Assert.True(exit == 0, $"{name} failed in clients/typescript ({exit}):\n{output}");
    }
}
