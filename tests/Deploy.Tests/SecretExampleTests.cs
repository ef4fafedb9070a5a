namespace Deploy.Tests;

public sealed class SecretExampleTests
{
    private const string ExamplePath = "deploy/secret.example.yaml";

    [Fact]
    public void SecretExample_HoldsOnlyPlaceholdersForTheSecretTheDeploymentReads()
    {
        var secret = Yaml.LoadSingle(Repo.Read(ExamplePath), ExamplePath);
        Assert.Equal("Secret", secret["kind"].Text());
        Assert.Equal(RenderedOverlay.SecretName, secret["metadata"]?["name"].Text());
        Assert.True(secret["data"] is null, $"{ExamplePath} should use stringData placeholders, not base64 data.");

        var values = secret["stringData"].StringMap().ToList();
        Assert.Contains(values, p => p.Key == "Fal__Key");
        Assert.Contains(values, p => p.Key == "ConnectionStrings__Redis");
        foreach (var (key, value) in values)
        {
            Assert.True(value is not null && value.Contains('<', StringComparison.Ordinal) && value.Contains('>', StringComparison.Ordinal),
                $"{ExamplePath}: {key} should be a <placeholder>, never a real value.");
        }
    }

    [Fact]
    public void NoKustomization_IncludesTheSecretExample()
    {
        foreach (var kustomization in Directory.EnumerateFiles(Repo.PathOf("deploy"), "kustomization.yaml", SearchOption.AllDirectories))
        {
            Assert.DoesNotContain("secret.example", File.ReadAllText(kustomization), StringComparison.Ordinal);
            Assert.DoesNotContain("secretGenerator", File.ReadAllText(kustomization), StringComparison.Ordinal);
        }
    }
}
