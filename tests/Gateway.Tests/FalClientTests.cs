using Gateway.Tests.Infrastructure;

namespace Gateway.Tests;

/// <summary>
/// Runs tests/FalClient (the official <c>@fal-ai/client</c>, pinned, under <c>node --test</c>) against a gateway and
/// the fal stand-in on loopback, so the README's single <c>dotnet test</c> proves the proxy with fal's own client.
/// </summary>
public sealed class FalClientTests(RedisServer redis)
{
    private static readonly TimeSpan NodeTimeout = TimeSpan.FromMinutes(4);

    [Fact]
    public async Task OfficialFalClient_ThroughTheGatewayProxy_PassesTheNodeSuite()
    {
        var folder = NodeTools.Folder("tests", "FalClient");
        await NodeTools.InstallAsync(folder, Path.Combine("@fal-ai", "client", "package.json"));

        await using var harness = await GatewayHarness.StartAsync(redis, e =>
        {
            e.QueueTime = TimeSpan.FromMilliseconds(50);
            e.RunTime = TimeSpan.FromMilliseconds(300);
        });
        var environment = new Dictionary<string, string?>
        {
            ["FAL_PROXY_URL"] = new Uri(harness.GatewayUrl, "/api/fal/proxy").ToString(),
            ["CLIENT_KEY"] = GatewayHarness.AlphaKey,
            ["OTHER_CLIENT_KEY"] = GatewayHarness.BetaKey,
            // The client would send these as Authorization: Key …; a frontend never has them.
            ["FAL_KEY"] = null,
            ["FAL_KEY_ID"] = null,
            ["FAL_KEY_SECRET"] = null,
            ["NODE_OPTIONS"] = null,
        };

        var (exit, output) = await NodeTools.RunAsync("node", ["--test", "--test-reporter=spec"], folder, environment, NodeTimeout);

        Assert.True(exit == 0, $"node --test in tests/FalClient failed ({exit}):\n{output}");
        Assert.True(harness.Fal.AcceptedSubmitCount > 0, output);
    }
}
