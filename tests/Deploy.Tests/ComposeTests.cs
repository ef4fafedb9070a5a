using System.Text.RegularExpressions;

namespace Deploy.Tests;

public sealed partial class ComposeTests
{
    private const string OfflineEnvFile = "deploy/compose/offline.env";

    private static readonly Dictionary<string, string> NoVariables = [];

    [GeneratedRegex(@"^\$\{[A-Z_][A-Z0-9_]*(:?\?[^}]*)?\}$")]
    private static partial Regex PureRequiredOrPlainVariable();

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex LowercaseSha256Hex();

    [Fact]
    public void Redis_HasAHealthcheckAndANamedVolume()
    {
        var redis = Compose.Service("redis");
        Assert.StartsWith("redis:7", redis["image"].Text(), StringComparison.Ordinal);
        var test = string.Join(' ', redis["healthcheck"]?["test"]?.AsArray().Select(t => t.Text()) ?? []);
        Assert.True(test.Contains("redis-cli", StringComparison.Ordinal) && test.Contains("ping", StringComparison.Ordinal),
            $"redis's healthcheck should run `redis-cli ping`, runs '{test}'.");

        var volumes = redis["volumes"]!.AsArray().Select(v => v.Text()!.Split(':')[0]).ToList();
        var declared = Compose.File["volumes"].StringMap().Select(p => p.Key).ToList();
        Assert.True(volumes.Any(declared.Contains), $"redis mounts [{string.Join(", ", volumes)}], none of them a named volume declared under volumes: [{string.Join(", ", declared)}].");
    }

    [Fact]
    public void Gateway_WaitsForHealthyRedisAndConnectsToIt()
    {
        var gateway = Compose.Service("gateway");
        Assert.Equal("service_healthy", gateway["depends_on"]?["redis"]?["condition"].Text());
        Assert.Equal("redis:6379", Compose.Environment("gateway").GetValueOrDefault("ConnectionStrings__Redis"));
    }

    [Fact]
    public void Gateway_TakesTheFalKeyAndClientKeysFromTheEnvironmentNeverFromTheFile()
    {
        foreach (var service in Compose.File["services"].StringMap().Select(p => p.Key))
        {
            foreach (var (name, value) in Compose.Environment(service))
            {
                if (name is "Fal__Key" or "FAL_KEY" or "FAL_KEY_ID" or "FAL_KEY_SECRET" || name.EndsWith("KeySha256", StringComparison.Ordinal))
                {
                    Assert.True(PureRequiredOrPlainVariable().IsMatch(value),
                        $"{service}: {name} is '{value}'; it must be a ${{VARIABLE}} (optionally :?message) with no literal default.");
                }
            }
        }

        Assert.StartsWith("${FAL_KEY", Compose.Environment("gateway")["Fal__Key"], StringComparison.Ordinal);
    }

    [Fact]
    public void Online_WithoutAFalKey_RefusesToStartAndSaysWhichVariable()
    {
        var refused = Assert.Throws<RequiredVariableException>(() => Compose.ResolvedEnvironment("gateway", NoVariables));
        Assert.Equal("FAL_KEY", refused.Name);
        Assert.Contains("offline.env", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Online_WithTheRequiredVariables_TalksToRealFal()
    {
        var variables = new Dictionary<string, string> { ["FAL_KEY"] = "from-the-shell", ["CLIENT_KEY_SHA256"] = new('a', 64) };
        Compose.InterpolateEverything(variables);
        var env = Compose.ResolvedEnvironment("gateway", variables);

        Assert.Equal("from-the-shell", env["Fal__Key"]);
        Assert.Equal("https://queue.fal.run", env.GetValueOrDefault("Fal__QueueBaseUrl", "https://queue.fal.run"));
        Assert.Equal("https://rest.fal.ai", env.GetValueOrDefault("Fal__RestBaseUrl", "https://rest.fal.ai"));
        Assert.Equal("https://fal.run", env.GetValueOrDefault("Fal__RunBaseUrl", "https://fal.run"));
        Assert.DoesNotContain("fal-emulator", string.Join(' ', env.Values), StringComparison.Ordinal);
    }

    [Fact]
    public void OfflineEnvFile_EnablesTheOfflineProfileWithTheEmulatorService()
    {
        var offline = Compose.ReadEnvFile(OfflineEnvFile);
        Assert.Contains("offline", offline.GetValueOrDefault("COMPOSE_PROFILES", "").Split(','));

        var emulator = Compose.Service("fal-emulator");
        Assert.Contains("offline", emulator["profiles"]!.AsArray().Select(p => p.Text()));
        Assert.True(Compose.Service("gateway")["profiles"] is null, "The gateway must run in every profile.");
        Assert.True(Compose.Service("redis")["profiles"] is null, "Redis must run in every profile.");
    }

    [Fact]
    public void Offline_NeedsNoVariableBeyondTheEnvFile()
    {
        var offline = Compose.ReadEnvFile(OfflineEnvFile);
        var missing = Record.Exception(() => Compose.InterpolateEverything(offline));
        Assert.True(missing is null, $"docker compose --env-file {OfflineEnvFile} would stop: {missing?.Message}");
    }

    [Fact]
    public void Offline_PointsTheGatewayAtTheEmulatorWithTheEmulatorsKey()
    {
        var offline = Compose.ReadEnvFile(OfflineEnvFile);
        var gateway = Compose.ResolvedEnvironment("gateway", offline);
        var emulator = Compose.ResolvedEnvironment("fal-emulator", offline);

        Assert.Equal("emulator-key", gateway["Fal__Key"]);
        Assert.Equal(emulator.GetValueOrDefault("FalEmulator__Key", "emulator-key"), gateway["Fal__Key"]);
        Assert.Equal("http://fal-emulator:8080", gateway["Fal__QueueBaseUrl"]);
        Assert.Equal("http://fal-emulator:8080/rest", gateway["Fal__RestBaseUrl"]);
        Assert.Equal("http://fal-emulator:8080/run", gateway["Fal__RunBaseUrl"]);
        Assert.Equal("http://fal-emulator:8080/rest/.well-known/jwks.json", gateway["Fal__JwksUrl"]);

        // The emulator delivers webhooks to the gateway across the compose network.
        Assert.Equal("http://gateway:8080", gateway["Gateway__PublicBaseUrl"]);

        var clientKeys = gateway.Where(p => p.Key.EndsWith("__KeySha256", StringComparison.Ordinal)).ToList();
        Assert.True(clientKeys.Count > 0, "Offline, the gateway has no client configured; it would refuse to start outside Development.");
        Assert.All(clientKeys, p => Assert.Matches(LowercaseSha256Hex(), p.Value));
    }

    [Fact]
    public void BuildTargets_AreStagesOfTheDockerfile()
    {
        var dockerfile = Dockerfile.Parse(Repo.Read("Dockerfile"));
        Assert.Equal(dockerfile.Default.Name, Compose.Service("gateway")["build"]?["target"].Text());
        dockerfile.Named(Compose.Service("fal-emulator")["build"]?["target"].Text() ?? "(no target)");
    }

    [Fact]
    public void Gateway_PublishesTheImagesPortOnLoopbackOnly()
    {
        var ports = Compose.Service("gateway")["ports"]!.AsArray().Select(p => p.Text()!).ToList();
        Assert.True(ports.Count > 0, "The gateway publishes no port.");
        Assert.All(ports, p =>
        {
            Assert.StartsWith("127.0.0.1:", p, StringComparison.Ordinal);
            Assert.EndsWith(":8080", p, StringComparison.Ordinal);
        });
    }
}
