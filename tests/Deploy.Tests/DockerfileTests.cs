using System.Xml.Linq;

namespace Deploy.Tests;

public sealed class DockerfileTests
{
    private static readonly Dockerfile File = Dockerfile.Parse(Repo.Read("Dockerfile"));

    private static readonly DockerIgnore Ignore = DockerIgnore.Parse(Repo.Read(".dockerignore"));

    /// <summary>The gateway is self-contained (its own runtime): runtime-deps. The stand-in runs on the shared framework.</summary>
    private static readonly Dictionary<string, string> RuntimeImages = new()
    {
        ["gateway"] = "mcr.microsoft.com/dotnet/runtime-deps:",
        ["emulator"] = "mcr.microsoft.com/dotnet/aspnet:",
    };

    private static readonly string[] BuildSettings = ["global.json", "Directory.Build.props", "Directory.Packages.props"];

    public static TheoryData<string> FinalStages => ["gateway", "emulator"];

    [Fact]
    public void CopiesFromTheContext_NameFilesThatExistAndAreNotDockerIgnored()
    {
        foreach (var stage in File.Stages)
        {
            foreach (var copy in stage.All("COPY").Concat(stage.All("ADD")))
            {
                var (flags, operands) = copy.Words();
                if (flags.ContainsKey("from"))
                {
                    continue;
                }

                foreach (var source in operands.SkipLast(1))
                {
                    var path = Repo.PathOf(source.TrimEnd('/'));
                    Assert.True(System.IO.File.Exists(path) || Directory.Exists(path),
                        $"`{copy.Keyword} {copy.Arguments}` copies {source}, which does not exist in the repository.");
                    Assert.False(Ignore.Excludes(source), $"`{copy.Keyword} {copy.Arguments}` copies {source}, which .dockerignore leaves out of the context.");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(FinalStages))]
    public void FinalStage_RunsARuntimeImageAsANonRootUser(string stageName)
    {
        var stage = File.Named(stageName);
        Assert.True(stage.Image.StartsWith(RuntimeImages[stageName], StringComparison.Ordinal),
            $"Stage {stageName} derives from {stage.Image}; it should be {RuntimeImages[stageName]}… (a runtime image, no SDK).");

        var user = stage.Last("USER")?.Arguments;
        Assert.True(user is not null, $"Stage {stageName} has no USER line, so it runs as root.");
        var name = user.Split(':')[0];
        Assert.True(name is "$APP_UID" or "${APP_UID}" or "app" || (int.TryParse(name, out var uid) && uid > 0),
            $"Stage {stageName} runs as USER {user}; use $APP_UID (the .NET images' app user, 1654).");
    }

    [Theory]
    [MemberData(nameof(FinalStages))]
    public void FinalStage_HoldsOnlyPublishOutputAndNoSecrets(string stageName)
    {
        var stage = File.Named(stageName);
        foreach (var copy in stage.All("COPY").Concat(stage.All("ADD")))
        {
            var (flags, _) = copy.Words();
            Assert.True(flags.TryGetValue("from", out var from) && File.Stages.Any(s => s.Name == from),
                $"Stage {stageName}: `{copy.Keyword} {copy.Arguments}` copies from the build context; the final image should hold only the publish output.");
        }

        Assert.DoesNotContain(stage.All("RUN"), r => r.Arguments.Contains("dotnet test", StringComparison.Ordinal));
        var secretEnv = stage.All("ENV").Concat(stage.All("ARG"))
            .Where(e => e.Arguments.Contains("KEY", StringComparison.OrdinalIgnoreCase) || e.Arguments.Contains("SECRET", StringComparison.OrdinalIgnoreCase) || e.Arguments.Contains("PASSWORD", StringComparison.OrdinalIgnoreCase))
            .ToList();
        Assert.True(secretEnv.Count == 0, $"Stage {stageName} bakes a secret-looking setting into the image: {string.Join("; ", secretEnv.Select(e => $"{e.Keyword} {e.Arguments}"))}.");
    }

    [Fact]
    public void DefaultTarget_IsTheGatewayListeningOn8080AsTheDeploymentExpects()
    {
        var gateway = File.Default;
        Assert.Equal("gateway", gateway.Name);
        // The self-contained build's own executable (in WORKDIR /app), not `dotnet Gateway.dll`: the image has no dotnet host.
        Assert.Equal("[\"./Gateway\"]", gateway.Last("ENTRYPOINT")?.Arguments);
        Assert.Equal("/app", gateway.Last("WORKDIR")?.Arguments);

        var exposed = gateway.All("EXPOSE").Select(e => e.Arguments.Split('/')[0]).ToList();
        Assert.True(exposed.SequenceEqual(["8080"]), $"The gateway stage exposes [{string.Join(", ", exposed)}]; it listens on 8080.");
        Assert.Contains(gateway.All("ENV"), e => e.Arguments.Replace(" ", "=", StringComparison.Ordinal) == "ASPNETCORE_HTTP_PORTS=8080");

        var deployed = RenderedOverlay.Of("production");
        Assert.True(deployed.HttpContainerPort == 8080, $"The production Deployment's http port is {deployed.HttpContainerPort}, the image exposes 8080.");
    }

    [Fact]
    public void EmulatorTarget_ListensOnAllInterfacesOnPort8080()
    {
        var emulator = File.Named("emulator");
        var entrypoint = emulator.Last("ENTRYPOINT")?.Arguments ?? "";
        Assert.Contains("FalEmulator.dll", entrypoint, StringComparison.Ordinal);
        // The stand-in binds loopback unless --urls says otherwise; docker-compose reaches it as fal-emulator:8080.
        Assert.Matches(@"--urls""?\s*,?\s*""?http://(\+|\*|0\.0\.0\.0):8080", entrypoint);
        Assert.Contains(emulator.All("EXPOSE"), e => e.Arguments.Split('/')[0] == "8080");
    }

    [Fact]
    public void Restore_CopiesBuildSettingsAndEveryProjectFileBeforeTheSources()
    {
        var instructions = File.Stages.SelectMany(s => s.Instructions).ToList();
        var restore = instructions.FindIndex(i => i.Keyword == "RUN" && i.Arguments.Contains("dotnet restore", StringComparison.Ordinal));
        Assert.True(restore >= 0, "The Dockerfile never runs `dotnet restore` on its own, so every source change would re-download packages.");

        var copiedBefore = instructions.Take(restore)
            .Where(i => i.Keyword == "COPY" && !i.Words().Flags.ContainsKey("from"))
            .SelectMany(i => i.Words().Operands.SkipLast(1))
            .ToList();
        var sourcesBeforeRestore = copiedBefore
            .Where(p => !(p.EndsWith(".csproj", StringComparison.Ordinal) || p.EndsWith(".props", StringComparison.Ordinal)
                || p is "global.json" or ".editorconfig" or "nuget.config" or "NuGet.config"))
            .ToList();
        Assert.True(sourcesBeforeRestore.Count == 0, $"The restore layer copies [{string.Join(", ", sourcesBeforeRestore)}]; only project files and build settings belong before restore.");

        foreach (var required in BuildSettings.Concat(ProjectsTheGatewayBuilds()))
        {
            Assert.True(copiedBefore.Contains(required), $"{required} is not copied before `dotnet restore`; restore would miss it.");
        }

        var sources = instructions.FindIndex(i => i.Keyword == "COPY" && i.Words().Operands.SkipLast(1).Any(p => p.TrimEnd('/') == "src"));
        Assert.True(sources > restore, "src/ should be copied after `dotnet restore`, so the restore layer stays cached.");
        // The gateway links the root appsettings.json; it is content, not a restore input.
        Assert.True(instructions.Skip(restore).Any(i => i.Keyword == "COPY" && i.Words().Operands.SkipLast(1).Contains("appsettings.json")),
            "The root appsettings.json (linked into src/Gateway) should be copied after restore, before publish.");

        var publish = instructions.Where(i => i.Keyword == "RUN" && i.Arguments.Contains("dotnet publish src/Gateway", StringComparison.Ordinal)).ToList();
        Assert.True(publish.Count == 1, "The Dockerfile should publish src/Gateway once.");
        Assert.Contains("--no-restore", publish[0].Arguments, StringComparison.Ordinal);
        Assert.Contains("-c Release", publish[0].Arguments, StringComparison.Ordinal);
    }

    /// <summary>
    /// The gateway is published for the image's architecture, which Gateway.csproj makes self-contained and trimmed (the
    /// build the published-build tests run), and restored for the same runtime, or the runtime packs and the trimmer
    /// would be missing at publish. A self-contained build needs its executable: no UseAppHost=false.
    /// </summary>
    [Fact]
    public void GatewayPublish_IsForTheTargetRuntime_AsRestored()
    {
        var runs = File.Stages.SelectMany(s => s.All("RUN")).Select(r => r.Arguments).ToList();
        var publish = Assert.Single(runs, r => r.Contains("dotnet publish src/Gateway", StringComparison.Ordinal));
        var restore = Assert.Single(runs, r => r.Contains("dotnet restore src/Gateway/Gateway.csproj", StringComparison.Ordinal));
        Assert.Contains("-a $TARGETARCH", publish, StringComparison.Ordinal);
        Assert.Contains("dotnet restore src/Gateway/Gateway.csproj -a $TARGETARCH", restore, StringComparison.Ordinal);
        Assert.DoesNotContain("UseAppHost=false", publish, StringComparison.Ordinal);
        Assert.DoesNotContain("SelfContained", publish, StringComparison.Ordinal);
        Assert.DoesNotContain("PublishTrimmed", publish, StringComparison.Ordinal);

        var project = XDocument.Parse(Repo.Read("src/Gateway/Gateway.csproj"));
        var forARuntime = project.Descendants("PropertyGroup")
            .Single(g => (string?)g.Attribute("Condition") == "'$(RuntimeIdentifier)' != ''");
        Assert.Equal("true", (string?)forARuntime.Element("SelfContained"));
        Assert.Equal("true", (string?)forARuntime.Element("PublishTrimmed"));
        Assert.Equal("partial", (string?)forARuntime.Element("TrimMode"));
    }

    /// <summary>
    /// Restore decides which project references count, and a plain <c>dotnet restore</c> evaluates Debug, where
    /// the gateway references the fal stand-in: its packages (SkiaSharp) would reach the Release publish.
    /// </summary>
    [Fact]
    public void Restore_OfTheGateway_IsForRelease_AndEveryPublishedProjectIsRestored()
    {
        var commands = File.Stages.SelectMany(s => s.All("RUN"))
            .SelectMany(r => r.Arguments.Split("&&"))
            .Select(c => c.Trim())
            .ToList();
        var gateway = commands.Where(c => c.StartsWith("dotnet restore src/Gateway", StringComparison.Ordinal)).ToList();
        Assert.True(gateway.Count == 1, $"The Dockerfile should restore src/Gateway once; it runs [{string.Join("; ", gateway)}].");
        Assert.Matches(@"(-p|/p|--property):Configuration=Release(\s|$)", gateway[0]);

        foreach (var publish in commands.Where(c => c.StartsWith("dotnet publish ", StringComparison.Ordinal) && c.Contains("--no-restore", StringComparison.Ordinal)))
        {
            var project = publish.Split(' ', StringSplitOptions.RemoveEmptyEntries)[2];
            Assert.True(commands.Any(c => c.StartsWith($"dotnet restore {project}", StringComparison.Ordinal)),
                $"`{publish}` does not restore, and nothing restores {project} before it.");
        }
    }

    [Fact]
    public void DockerIgnore_KeepsBuildOutputTestsAndGitOutOfTheContext()
    {
        foreach (var path in new[] { ".git/HEAD", "src/Gateway/bin/Debug/net10.0/Gateway.dll", "src/Gateway/obj/project.assets.json", "tests/Deploy.Tests/Deploy.Tests.csproj", "src/Gateway/wwwroot/node_modules/x.js", "deploy/README.md", ".env" })
        {
            Assert.True(Ignore.Excludes(path), $".dockerignore lets {path} into the build context.");
        }

        foreach (var path in new[] { "src/Gateway/Program.cs", "src/FalEmulator/FalEmulator.csproj", "appsettings.json", "global.json", "Directory.Build.props" })
        {
            Assert.False(Ignore.Excludes(path), $".dockerignore leaves out {path}, which the build needs.");
        }
    }

    /// <summary>src/Gateway/Gateway.csproj and every project it references, transitively, relative to the root.</summary>
    private static IEnumerable<string> ProjectsTheGatewayBuilds()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>([Repo.PathOf("src/Gateway/Gateway.csproj")]);
        while (pending.TryPop(out var project))
        {
            if (!seen.Add(Path.GetFullPath(project)))
            {
                continue;
            }

            foreach (var reference in XDocument.Load(project).Descendants("ProjectReference"))
            {
                var include = reference.Attribute("Include")?.Value.Replace('\\', '/') ?? "";
                pending.Push(Path.Combine(Path.GetDirectoryName(project)!, include));
            }
        }

        return seen.Select(p => Path.GetRelativePath(Repo.Root, p).Replace('\\', '/'));
    }
}
