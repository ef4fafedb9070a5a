using Gateway.Tests.Infrastructure;

namespace Gateway.Tests;

/// <summary>
/// A real browser (issue 11): Debian's headless Chromium, driven by playwright-core from tests/Browser (node --test),
/// loads a page from one loopback origin and uses the gateway on another, signed in with an access token from a
/// local OIDC issuer: fetch reading Location and RateLimit, EventSource on links.events, and the official
/// @fal-ai/client with proxyUrl (subscribe polling and streaming, storage.upload).
/// </summary>
public sealed class BrowserTests(RedisServer redis)
{
    private const string Chromium = "/usr/bin/chromium";
    private const string App = "44444444-dddd-4ddd-8ddd-frontend0004";
    private static readonly TimeSpan NodeTimeout = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task RealBrowser_OnAnotherOrigin_SignedIn_UsesTheApiEventSourceAndFalClient()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing; these tests drive Debian's Chromium: apt-get install -y chromium");
        var folder = NodeTools.Folder("Browser");
        await NodeTools.PrepareAsync(folder, Path.Combine("playwright-core", "package.json"));

        await using var issuer = await TestOidcIssuer.StartAsync();
        var pagePort = RedisServer.FreePort();
        var linkKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        await using var harness = await GatewayHarness.StartAsync(redis, e =>
        {
            e.QueueTime = TimeSpan.FromMilliseconds(300);
            e.RunTime = TimeSpan.FromMilliseconds(600);
        }, settings: issuer.Settings(
            ("Clients:alpha:AppIds:0", App),
            ("Cors:AllowedOrigins:0", $"http://127.0.0.1:{pagePort}"),
            ("Gateway:LinkSigningKey", linkKey)));
        var user = "oid-" + Guid.NewGuid().ToString("N")[..12];
        var token = harness.Secret(issuer.Token(App, user));

        var (exit, output) = await NodeTools.RunAsync("node", ["--test", "--test-reporter=spec", "--test-concurrency=1"], folder, new Dictionary<string, string?>
        {
            ["GATEWAY_URL"] = harness.GatewayUrl.ToString(),
            ["ACCESS_TOKEN"] = token,
            ["USER_ID"] = user,
            ["PAGE_PORT"] = pagePort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["CHROMIUM"] = Chromium,
            ["NODE_OPTIONS"] = null,
        }, NodeTimeout);

        Assert.True(exit == 0, $"node --test in tests/Browser failed ({exit}):\n{output}");
        Assert.Contains("fail 0", output, StringComparison.Ordinal);
        Assert.True(harness.Fal.AcceptedSubmitCount >= 4, output);
    }
}
