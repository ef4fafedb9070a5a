using System.Diagnostics;
using System.Net;
using Gateway.Tests.Infrastructure;

namespace Gateway.Tests;

/// <summary>
/// Client keys an operator rotates without a restart: several valid hashes per client, and a directory of
/// key-per-file settings (Gateway__SecretsPath, as a Kubernetes Secret volume lays it out) that is watched.
/// </summary>
public sealed class ClientKeyRotationTests(RedisServer redis) : IDisposable
{
    /// <summary>File events, a 250 ms reload delay and a loaded machine: seconds, with room.</summary>
    private static readonly TimeSpan TakesEffectWithin = TimeSpan.FromSeconds(15);

    private readonly DirectoryInfo _secrets = Directory.CreateTempSubdirectory("gateway-secrets-");

    [Fact]
    public async Task ASecondKeyHash_AuthenticatesTheSameClient_BesideTheFirst()
    {
        const string NewKey = "alpha-rotated-key-0c41d7e2";
        await using var harness = await GatewayHarness.StartAsync(redis, settings: new Dictionary<string, string?>
        {
            ["Clients:alpha:KeySha256s:0"] = GatewayHarness.Sha256(NewKey),
        });

        var id = await harness.Client(NewKey).SubmitAsync(new { prompt = "submitted with the new key" });
        using var seenWithOld = await harness.Client(GatewayHarness.AlphaKey).GetAsync($"/v1/generations/{id}", TestContext.Current.CancellationToken);
        Assert.True(seenWithOld.StatusCode == HttpStatusCode.OK, $"the old key does not see the new key's generation: {(int)seenWithOld.StatusCode}");
        using var other = await harness.Client(GatewayHarness.BetaKey).GetAsync($"/v1/generations/{id}", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(harness, "not-a-configured-key"));
    }

    [Fact]
    public async Task AKeyFileAdded_Authenticates_AndRemoved_IsRefused_WithinSeconds_WithoutARestart()
    {
        const string GammaKey = "gamma-key-2b9e54a0", DeltaKey = "delta-key-8d1f3c77";
        Write("Clients__gamma__KeySha256", GatewayHarness.Sha256(GammaKey));
        await using var harness = await StartAsync();
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(harness, GammaKey));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(harness, DeltaKey));

        Write("Clients__delta__KeySha256", GatewayHarness.Sha256(DeltaKey));
        var added = await WaitForAsync(harness, DeltaKey, HttpStatusCode.OK);
        await WaitForZeroSeriesAsync(harness, "delta"); // an alert on the new client's counters has a series from the start
        File.Delete(Path.Combine(_secrets.FullName, "Clients__gamma__KeySha256"));
        var removed = await WaitForAsync(harness, GammaKey, HttpStatusCode.Unauthorized);

        Assert.Equal(HttpStatusCode.OK, await StatusAsync(harness, GatewayHarness.AlphaKey)); // from the environment: untouched
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(harness, DeltaKey));
        TestContext.Current.SendDiagnosticMessage($"key file added: in force after {added.TotalMilliseconds:F0} ms; removed: refused after {removed.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public async Task ARotation_NewKeyFileBesideTheOld_ThenTheOldRemoved_NeverLocksTheClientOut()
    {
        const string OldKey = "gamma-old-key-61a2", NewKey = "gamma-new-key-94c0";
        Write("Clients__gamma__KeySha256", GatewayHarness.Sha256(OldKey));
        await using var harness = await StartAsync();

        Write("Clients__gamma__KeySha256s__1", GatewayHarness.Sha256(NewKey));
        await WaitForAsync(harness, NewKey, HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(harness, OldKey));

        File.Delete(Path.Combine(_secrets.FullName, "Clients__gamma__KeySha256"));
        await WaitForAsync(harness, OldKey, HttpStatusCode.Unauthorized);
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(harness, NewKey));
    }

    [Fact]
    public async Task AMalformedHashInAChangedFile_IsLogged_AndTheLastGoodSettingsStayInForce()
    {
        const string GammaKey = "gamma-key-f00d5e11", EpsilonKey = "epsilon-key-77aa01", Malformed = "d00dfeed-this-is-not-a-sha256-hex";
        Write("Clients__gamma__KeySha256", GatewayHarness.Sha256(GammaKey));
        await using var harness = await StartAsync();

        // One change with a bad value and a good new key: the change is refused as a whole.
        Write("Clients__epsilon__KeySha256", GatewayHarness.Sha256(EpsilonKey));
        Write("Clients__gamma__KeySha256", Malformed);
        var logged = Stopwatch.StartNew();
        while (!harness.LogEvents.Any(e => e.Level == Serilog.Events.LogEventLevel.Error && e.RenderMessage().Contains("Clients__gamma__KeySha256", StringComparison.Ordinal)))
        {
            Assert.True(logged.Elapsed < TakesEffectWithin, $"no error naming Clients__gamma__KeySha256 was logged:\n{harness.Logs()}");
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        Assert.Equal(HttpStatusCode.OK, await StatusAsync(harness, GammaKey));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(harness, EpsilonKey));
        Assert.Empty(harness.LogOccurrences(Malformed));
        Assert.Empty(harness.LogOccurrences(GatewayHarness.Sha256(EpsilonKey)));

        // Fixed: the whole change now applies.
        Write("Clients__gamma__KeySha256", GatewayHarness.Sha256(GammaKey));
        await WaitForAsync(harness, EpsilonKey, HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(harness, GammaKey));
    }

    /// <summary>
    /// A Kubernetes Secret volume: each key is a link to <c>..data/key</c>, and an update swaps the <c>..data</c> link to
    /// a new directory in one rename, so a changed value shows up without any visible file changing.
    /// </summary>
    [Fact]
    public async Task ASecretVolumeUpdate_ThatSwapsItsDataLink_ChangesAKeyWithinSeconds()
    {
        const string OldKey = "zeta-old-key-3e1b", NewKey = "zeta-new-key-c7d2";
        PublishSecretVolume(1, GatewayHarness.Sha256(OldKey));
        File.CreateSymbolicLink(Path.Combine(_secrets.FullName, "Clients__zeta__KeySha256"), Path.Combine("..data", "Clients__zeta__KeySha256"));
        await using var harness = await StartAsync();
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(harness, OldKey));

        PublishSecretVolume(2, GatewayHarness.Sha256(NewKey));
        await WaitForAsync(harness, NewKey, HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(harness, OldKey));
    }

    public void Dispose() => _secrets.Delete(recursive: true);

    private Task<GatewayHarness> StartAsync() =>
        GatewayHarness.StartAsync(redis, settings: new Dictionary<string, string?> { ["Gateway:SecretsPath"] = _secrets.FullName });

    private void Write(string setting, string value) => File.WriteAllText(Path.Combine(_secrets.FullName, setting), value + "\n");

    /// <summary>What the kubelet does: the values in a new timestamped directory, then <c>..data</c> renamed onto a link to it.</summary>
    private void PublishSecretVolume(int version, string zetaHash)
    {
        var data = Directory.CreateDirectory(Path.Combine(_secrets.FullName, $"..2026_01_0{version}_00_00_00.{version}"));
        File.WriteAllText(Path.Combine(data.FullName, "Clients__zeta__KeySha256"), zetaHash);
        var staging = Path.Combine(_secrets.FullName, "..data_tmp");
        File.CreateSymbolicLink(staging, data.Name);
        // rename(2) over the old link, as the kubelet does (File.Move refuses a link to a directory).
        using var rename = System.Diagnostics.Process.Start("mv", ["-T", "-f", staging, Path.Combine(_secrets.FullName, "..data")]);
        rename.WaitForExit();
        Assert.Equal(0, rename.ExitCode);
    }

    private static async Task<HttpStatusCode> StatusAsync(GatewayHarness harness, string key)
    {
        using var response = await harness.Client(key).GetAsync("/v1/usage", TestContext.Current.CancellationToken);
        return response.StatusCode;
    }

    private static async Task WaitForZeroSeriesAsync(GatewayHarness harness, string client)
    {
        var clock = Stopwatch.StartNew();
        string scrape;
        while (!(scrape = await harness.Client(key: null).GetStringAsync("/metrics", TestContext.Current.CancellationToken))
            .Split('\n').Any(line => line.StartsWith("gateway_client_submits_total{", StringComparison.Ordinal)
                && line.Contains($"client=\"{client}\"", StringComparison.Ordinal)
                && line[(line.LastIndexOf('}') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries) is ["0", ..]))
        {
            Assert.True(clock.Elapsed < TakesEffectWithin, $"no gateway_client_submits_total series at 0 for the added client {client}:\n{scrape}");
            await Task.Delay(200, TestContext.Current.CancellationToken);
        }
    }

    private static async Task<TimeSpan> WaitForAsync(GatewayHarness harness, string key, HttpStatusCode expected)
    {
        var clock = Stopwatch.StartNew();
        HttpStatusCode last;
        while ((last = await StatusAsync(harness, key)) != expected)
        {
            Assert.True(clock.Elapsed < TakesEffectWithin, $"the key still answered {(int)last} after {clock.Elapsed.TotalSeconds:F1} s; expected {(int)expected}.");
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        return clock.Elapsed;
    }
}
