using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Deploy.Tests;

/// <summary>Every overlay under deploy/overlays, rendered by `kubectl kustomize`, checked object by object.</summary>
public sealed partial class KubernetesManifestTests
{
    public static TheoryData<string> Overlays => [.. Kustomize.OverlayNames];

    // Settings the gateway contract (gateway-api.md, "Configuration") names, plus framework-owned prefixes.
    private static readonly HashSet<string> ContractSettings = new(StringComparer.Ordinal)
    {
        "Fal__Model", "Fal__QueueBaseUrl", "Fal__RestBaseUrl", "Fal__RunBaseUrl", "Fal__JwksUrl",
        "Gateway__PublicBaseUrl",
    };

    private static readonly string[] FrameworkPrefixes = ["Serilog__", "ASPNETCORE_", "DOTNET_", "OTEL_"];

    [GeneratedRegex(@"^Clients__[A-Za-z0-9_-]+__(RequestsPerMinute|ImagesPerDay)$")]
    private static partial Regex ClientLimitSetting();

    [GeneratedRegex(@"^(Fal__Key|FAL_KEY|FAL_KEY_ID|FAL_KEY_SECRET|ConnectionStrings__Redis)$|KeySha256$|KeySha256s__")]
    private static partial Regex SecretSetting();

    [Fact]
    public void Overlays_IncludeProduction()
    {
        Assert.Contains("production", Kustomize.OverlayNames);
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Probes_HitTheHealthRoutesOnTheContainersHttpPort(string overlay)
    {
        var o = RenderedOverlay.Of(overlay);
        var container = o.Container;

        AssertHttpProbe(o, container, "livenessProbe", "/health/live");
        AssertHttpProbe(o, container, "readinessProbe", "/health/ready");
        AssertHttpProbe(o, container, "startupProbe", "/health/live");
        Assert.True(o.HttpContainerPort == 8080, $"{overlay}: container port http is {o.HttpContainerPort}; the image listens on 8080.");
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Deployment_RunsAtLeastTwoReplicasWithinTheAutoscalerBounds(string overlay)
    {
        var o = RenderedOverlay.Of(overlay);
        var replicas = (long?)o.Deployment["spec"]!["replicas"];
        var hpa = o.Single("HorizontalPodAutoscaler")["spec"]!;
        var min = (long?)hpa["minReplicas"];
        var max = (long)hpa["maxReplicas"]!;

        Assert.True(replicas >= 2, $"{overlay}: Deployment replicas is {replicas?.ToString() ?? "unset"}; several replicas share Redis and one is a single point of failure.");
        Assert.True(min >= 2, $"{overlay}: HPA minReplicas is {min?.ToString() ?? "unset (1)"}; it must keep at least 2 pods.");
        Assert.True(min <= replicas && replicas <= max, $"{overlay}: Deployment replicas {replicas} is outside the HPA bounds {min}..{max}.");
        if (overlay == "production")
        {
            Assert.True(replicas >= 3, $"production runs {replicas} replicas; the brief asks for 3.");
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Pod_RunsNonRootWithReadOnlyRootAndNoPrivileges(string overlay)
    {
        var o = RenderedOverlay.Of(overlay);
        var pod = o.PodSpec["securityContext"] as JsonObject ?? [];
        var container = o.Container["securityContext"] as JsonObject;
        Assert.True(container is not null, $"{overlay}: the container has no securityContext.");

        JsonNode? Effective(string name) => container[name] ?? pod[name];

        Assert.True((bool?)Effective("runAsNonRoot") == true, $"{overlay}: runAsNonRoot must be true.");
        Assert.True((long?)Effective("runAsUser") == 1654, $"{overlay}: runAsUser should be 1654 (the aspnet image's app user), was {Effective("runAsUser").Text() ?? "unset"}.");
        Assert.True((bool?)container["readOnlyRootFilesystem"] == true, $"{overlay}: readOnlyRootFilesystem must be true.");
        Assert.True((bool?)container["allowPrivilegeEscalation"] == false, $"{overlay}: allowPrivilegeEscalation must be false.");
        var dropped = container["capabilities"]?["drop"]?.AsArray().Select(c => c.Text()).ToList() ?? [];
        Assert.True(dropped.Contains("ALL"), $"{overlay}: capabilities.drop must contain ALL, was [{string.Join(", ", dropped)}].");
        Assert.True(container["capabilities"]?["add"] is null, $"{overlay}: the container must not add capabilities.");
        Assert.True(Effective("seccompProfile")?["type"].Text() == "RuntimeDefault", $"{overlay}: seccompProfile should be RuntimeDefault.");
        Assert.True((bool?)container["privileged"] != true, $"{overlay}: the container must not be privileged.");
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Pod_HasAWritableTmpBecauseTheRootFilesystemIsReadOnly(string overlay)
    {
        var o = RenderedOverlay.Of(overlay);
        var mount = o.Container["volumeMounts"].Objects().FirstOrDefault(m => m["mountPath"].Text() == "/tmp");
        Assert.True(mount is not null, $"{overlay}: nothing is mounted at /tmp; .NET needs it writable.");
        var volume = o.PodSpec["volumes"].Objects().FirstOrDefault(v => v["name"].Text() == mount["name"].Text());
        Assert.True(volume?["emptyDir"] is not null, $"{overlay}: /tmp should be an emptyDir volume.");
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Container_SetsResourceRequestsAndLimits(string overlay)
    {
        var resources = RenderedOverlay.Of(overlay).Container["resources"];
        foreach (var kind in new[] { "requests", "limits" })
        {
            foreach (var resource in new[] { "cpu", "memory" })
            {
                Assert.False(string.IsNullOrEmpty(resources?[kind]?[resource].Text()), $"{overlay}: resources.{kind}.{resource} is not set.");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Shutdown_WaitsInPreStopAndLeavesTimeToDrain(string overlay)
    {
        var o = RenderedOverlay.Of(overlay);
        var preStop = o.Container["lifecycle"]?["preStop"];
        Assert.True(preStop is not null, $"{overlay}: the container has no preStop hook; pods would get traffic while stopping.");
        var sleepSeconds = (long?)preStop["sleep"]?["seconds"] ?? 0;
        Assert.True(sleepSeconds > 0 || preStop["exec"] is not null, $"{overlay}: preStop should sleep a few seconds.");
        var grace = (long?)o.PodSpec["terminationGracePeriodSeconds"] ?? 30;
        Assert.True(grace >= sleepSeconds + 30, $"{overlay}: terminationGracePeriodSeconds {grace} leaves less than ASP.NET Core's 30 s shutdown after a {sleepSeconds} s preStop.");
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Rendering_ContainsNoSecretObject(string overlay)
    {
        var secrets = RenderedOverlay.Of(overlay).OfKind("Secret").Select(s => s["metadata"]!["name"].Text()).ToList();
        Assert.True(secrets.Count == 0, $"{overlay} renders Secret(s) [{string.Join(", ", secrets)}]; secrets are created out of band (deploy/README.md).");
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void SecretSettings_ComeFromTheSecretNeverFromLiterals(string overlay)
    {
        var o = RenderedOverlay.Of(overlay);
        foreach (var env in o.Container["env"].Objects())
        {
            var name = env["name"].Text() ?? "";
            if (SecretSetting().IsMatch(name))
            {
                Assert.True(env["value"] is null, $"{overlay}: env {name} carries a literal value; it must come from the Secret.");
                Assert.True(env["valueFrom"]?["secretKeyRef"]?["name"].Text() == RenderedOverlay.SecretName, $"{overlay}: env {name} should come from secretKeyRef {RenderedOverlay.SecretName}.");
            }
        }

        foreach (var configMap in o.OfKind("ConfigMap"))
        {
            var leaked = configMap["data"].StringMap().Select(p => p.Key).Where(k => SecretSetting().IsMatch(k)).ToList();
            Assert.True(leaked.Count == 0, $"{overlay}: ConfigMap {configMap["metadata"]!["name"].Text()} holds secret settings [{string.Join(", ", leaked)}].");
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Deployment_RequiresFalKeyAndRedisFromTheSecret_AndMountsItAsWatchedKeyFiles(string overlay)
    {
        var o = RenderedOverlay.Of(overlay);
        var env = o.Container["env"].Objects().ToDictionary(e => e["name"].Text() ?? "");
        foreach (var required in new[] { "Fal__Key", "ConnectionStrings__Redis" })
        {
            Assert.True(env.TryGetValue(required, out var entry), $"{overlay}: the container does not set {required}.");
            var reference = entry["valueFrom"]?["secretKeyRef"];
            Assert.True(reference?["key"].Text() == required, $"{overlay}: {required} should read the Secret key of the same name.");
            Assert.True((bool?)reference["optional"] != true, $"{overlay}: {required} must not be optional; 3 replicas need Redis and fal needs the key.");
        }

        // Client keys are read from the mounted Secret (Gateway__SecretsPath), which the kubelet updates in place; as
        // variables (envFrom) they would be fixed at the pod's start, and a removed key would stay valid until a restart.
        var fromSecret = o.Container["envFrom"].Objects().Any(e => e["secretRef"]?["name"].Text() == RenderedOverlay.SecretName);
        Assert.False(fromSecret, $"{overlay}: envFrom imports {RenderedOverlay.SecretName}; client keys must come from the mounted files, not variables fixed at start.");
        var secretsPath = env.GetValueOrDefault("Gateway__SecretsPath")?["value"].Text();
        Assert.False(string.IsNullOrEmpty(secretsPath), $"{overlay}: Gateway__SecretsPath is not set; the gateway would not read the mounted Secret.");
        var volume = o.PodSpec["volumes"].Objects().FirstOrDefault(v => v["secret"]?["secretName"].Text() == RenderedOverlay.SecretName);
        Assert.True(volume is not null, $"{overlay}: no volume holds the Secret {RenderedOverlay.SecretName}.");
        var mount = o.Container["volumeMounts"].Objects().FirstOrDefault(m => m["name"].Text() == volume["name"].Text());
        Assert.True(mount is not null && mount["mountPath"].Text() == secretsPath, $"{overlay}: the Secret volume is mounted at {mount?["mountPath"].Text() ?? "nowhere"}, Gateway__SecretsPath is {secretsPath}.");
        Assert.True(mount!["subPath"] is null, $"{overlay}: the Secret is mounted with subPath, which never receives the Secret's updates.");
        Assert.True((bool?)mount["readOnly"] == true, $"{overlay}: the Secret volume should be mounted read-only.");
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void ConfigMap_UsesOnlySettingNamesFromTheContract(string overlay)
    {
        var o = RenderedOverlay.Of(overlay);
        var referenced = o.Container["envFrom"].Objects().Select(e => e["configMapRef"]?["name"].Text()).OfType<string>().ToList();
        Assert.True(referenced.Count > 0, $"{overlay}: the container reads no ConfigMap.");

        foreach (var name in referenced)
        {
            var configMap = o.OfKind("ConfigMap").FirstOrDefault(c => c["metadata"]!["name"].Text() == name);
            Assert.True(configMap is not null, $"{overlay}: the Deployment reads ConfigMap {name}, which the overlay does not render.");
            var keys = configMap["data"].StringMap().Select(p => p.Key).ToList();
            var unknown = keys.Where(k => !ContractSettings.Contains(k) && !ClientLimitSetting().IsMatch(k)
                && !FrameworkPrefixes.Any(p => k.StartsWith(p, StringComparison.Ordinal))).ToList();
            Assert.True(unknown.Count == 0, $"{overlay}: ConfigMap {name} has keys the gateway contract does not name: [{string.Join(", ", unknown)}].");
            Assert.Contains("Gateway__PublicBaseUrl", keys);
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void PublicBaseUrl_IsTheHttpsHostOfThePublicRoute(string overlay)
    {
        var o = RenderedOverlay.Of(overlay);
        var publicBaseUrl = o.OfKind("ConfigMap").Select(c => c["data"]?["Gateway__PublicBaseUrl"].Text()).OfType<string>().Single();
        Assert.True(Uri.TryCreate(publicBaseUrl, UriKind.Absolute, out var uri) && uri.Scheme == "https",
            $"{overlay}: Gateway__PublicBaseUrl '{publicBaseUrl}' should be an absolute https URL.");
        Assert.True(uri.AbsolutePath == "/", $"{overlay}: Gateway__PublicBaseUrl '{publicBaseUrl}' should have no path; the webhook route is appended to it.");

        var routes = o.OfKind("Ingress").Concat(o.OfKind("HTTPRoute")).ToList();
        Assert.True(routes.Count == 1, $"{overlay}: there should be exactly one public route (an Ingress or an HTTPRoute), found {routes.Count}.");
        if (routes[0]["kind"].Text() == "HTTPRoute")
        {
            // TLS is the platform's Gateway listener's; the route names the host.
            var names = routes[0]["spec"]!["hostnames"]!.AsArray().Select(h => h.Text()).ToList();
            Assert.True(names.Count > 0 && names.All(h => h == uri.Host), $"{overlay}: fal is told to call {uri.Host} but the HTTPRoute serves [{string.Join(", ", names)}].");
            return;
        }

        var ingress = routes[0]["spec"]!;
        var hosts = ingress["rules"].Objects().Select(r => r["host"].Text()).ToList();
        Assert.True(hosts.All(h => h == uri.Host), $"{overlay}: fal is told to call {uri.Host} but the Ingress serves [{string.Join(", ", hosts)}].");
        var tlsHosts = ingress["tls"].Objects().SelectMany(t => t["hosts"]!.AsArray().Select(h => h.Text())).ToList();
        Assert.True(tlsHosts.Contains(uri.Host), $"{overlay}: the Ingress has no TLS entry for {uri.Host}.");
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Ingress_ExposesOnlyTheFalWebhookRoute(string overlay)
    {
        var o = RenderedOverlay.Of(overlay);
        var service = o.Single("Service");
        var servicePorts = service["spec"]!["ports"].Objects().ToList();

        foreach (var ingress in o.OfKind("Ingress"))
        {
            var name = ingress["metadata"]!["name"].Text();
            Assert.True(ingress["spec"]!["defaultBackend"] is null, $"{overlay}: Ingress {name} has a defaultBackend, which would publish every route.");
            var paths = ingress["spec"]!["rules"].Objects().SelectMany(r => r["http"]!["paths"].Objects()).ToList();
            Assert.True(paths.Count > 0, $"{overlay}: Ingress {name} has no paths.");
            foreach (var path in paths)
            {
                Assert.True(path["path"].Text() == "/v1/webhooks/fal" && path["pathType"].Text() == "Exact",
                    $"{overlay}: Ingress {name} publishes {path["pathType"].Text()} {path["path"].Text()}; only Exact /v1/webhooks/fal may be public.");
                var backend = path["backend"]!["service"]!;
                Assert.Equal(service["metadata"]!["name"].Text(), backend["name"].Text());
                var port = backend["port"]!;
                Assert.True(servicePorts.Any(p => p["name"].Text() == port["name"].Text() && port["name"] is not null
                        || (long?)p["port"] == (long?)port["number"] && port["number"] is not null),
                    $"{overlay}: Ingress {name} targets service port {port.ToJsonString()}, which the Service does not declare.");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void HttpRoute_ExposesOnlyPostToTheFalWebhookRoute(string overlay)
    {
        var o = RenderedOverlay.Of(overlay);
        var service = o.Single("Service");
        var servicePorts = service["spec"]!["ports"].Objects().Select(p => (long?)p["port"]).ToList();
        foreach (var route in o.OfKind("HTTPRoute"))
        {
            var name = route["metadata"]!["name"].Text();
            Assert.Equal("gateway.networking.k8s.io/v1", route["apiVersion"].Text());
            Assert.True(route["spec"]!["parentRefs"].Objects().Any(), $"{overlay}: HTTPRoute {name} attaches to no Gateway.");
            var rules = route["spec"]!["rules"].Objects().ToList();
            Assert.True(rules.Count > 0, $"{overlay}: HTTPRoute {name} has no rules.");
            foreach (var rule in rules)
            {
                var matches = rule["matches"].Objects().ToList();
                Assert.True(matches.Count > 0, $"{overlay}: HTTPRoute {name} has a rule without matches, which matches every path.");
                foreach (var match in matches)
                {
                    Assert.True(match["path"]?["type"].Text() == "Exact" && match["path"]?["value"].Text() == "/v1/webhooks/fal" && match["method"].Text() == "POST",
                        $"{overlay}: HTTPRoute {name} publishes {match.ToJsonString()}; only POST Exact /v1/webhooks/fal may be public.");
                }

                foreach (var backend in rule["backendRefs"].Objects())
                {
                    Assert.Equal(service["metadata"]!["name"].Text(), backend["name"].Text());
                    Assert.True(servicePorts.Contains((long?)backend["port"]), $"{overlay}: HTTPRoute {name} targets port {backend["port"].Text()}, which the Service does not declare.");
                }
            }
        }
    }

    /// <summary>The ingress must let through every webhook body the gateway itself accepts (README: Webhooks__MaxBodyBytes).</summary>
    [Theory]
    [MemberData(nameof(Overlays))]
    public void Ingress_AllowsTheWebhookBodiesTheGatewayAccepts(string overlay)
    {
        var gatewayLimit = ReadmeDefaultBytes("Webhooks__MaxBodyBytes");
        foreach (var ingress in RenderedOverlay.Of(overlay).OfKind("Ingress"))
        {
            var annotation = ingress["metadata"]?["annotations"]?["nginx.ingress.kubernetes.io/proxy-body-size"].Text();
            var match = NginxSize().Match(annotation ?? "");
            Assert.True(match.Success, $"{overlay}: the Ingress sets no proxy-body-size (ingress-nginx's default is 1m, below the gateway's {gatewayLimit} bytes).");
            var bytes = long.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)
                * match.Groups[2].Value.ToLowerInvariant() switch { "k" => 1024L, "m" => 1024L * 1024, "g" => 1024L * 1024 * 1024, _ => 1L };
            Assert.True(bytes >= gatewayLimit, $"{overlay}: the Ingress caps bodies at {annotation} ({bytes} bytes), below Webhooks__MaxBodyBytes ({gatewayLimit}): a large webhook would never reach the gateway.");
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Service_ForwardsToTheContainersHttpPortOfTheGatewayPods(string overlay)
    {
        var o = RenderedOverlay.Of(overlay);
        var spec = o.Single("Service")["spec"]!;
        Assert.Equal("ClusterIP", spec["type"].Text() ?? "ClusterIP");
        AssertSelects(overlay, "Service", spec["selector"], o.PodLabels);
        foreach (var port in spec["ports"].Objects())
        {
            var target = o.ResolveContainerPort(port["targetPort"] ?? port["port"]);
            Assert.True(target == o.HttpContainerPort, $"{overlay}: Service port {port["port"].Text()} targets {port["targetPort"].Text()}, not the container's http port {o.HttpContainerPort}.");
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void AutoscalerAndDisruptionBudget_TargetTheGatewayDeployment(string overlay)
    {
        var o = RenderedOverlay.Of(overlay);
        var deploymentName = o.Deployment["metadata"]!["name"].Text();

        var target = o.Single("HorizontalPodAutoscaler")["spec"]!["scaleTargetRef"]!;
        Assert.Equal("Deployment", target["kind"].Text());
        Assert.Equal(deploymentName, target["name"].Text());
        Assert.Equal("autoscaling/v2", o.Single("HorizontalPodAutoscaler")["apiVersion"].Text());
        var metrics = o.Single("HorizontalPodAutoscaler")["spec"]!["metrics"].Objects().Select(m => m["resource"]?["name"].Text()).ToList();
        Assert.True(metrics.Contains("cpu"), $"{overlay}: the HPA should scale on CPU.");

        var pdb = o.Single("PodDisruptionBudget")["spec"]!;
        AssertSelects(overlay, "PodDisruptionBudget", pdb["selector"]?["matchLabels"], o.PodLabels);
        Assert.True(pdb["maxUnavailable"] is not null || pdb["minAvailable"] is not null, $"{overlay}: the PDB sets neither maxUnavailable nor minAvailable.");

        AssertSelects(overlay, "Deployment selector", o.Deployment["spec"]!["selector"]!["matchLabels"], o.PodLabels);
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void NetworkPolicy_AdmitsTheHttpPortAndLimitsEgress(string overlay)
    {
        var o = RenderedOverlay.Of(overlay);
        var spec = o.Single("NetworkPolicy")["spec"]!;
        AssertSelects(overlay, "NetworkPolicy", spec["podSelector"]?["matchLabels"], o.PodLabels);
        var types = spec["policyTypes"]!.AsArray().Select(t => t.Text()).ToList();
        Assert.True(types.Contains("Ingress") && types.Contains("Egress"), $"{overlay}: the NetworkPolicy should restrict both Ingress and Egress, has [{string.Join(", ", types)}].");

        var ingressPorts = spec["ingress"].Objects().SelectMany(r => r["ports"].Objects()).Select(p => o.ResolveContainerPort(p["port"])).ToList();
        Assert.True(ingressPorts.Count > 0 && ingressPorts.All(p => p == o.HttpContainerPort), $"{overlay}: the NetworkPolicy should admit exactly the http port {o.HttpContainerPort}.");
        Assert.True(spec["ingress"].Objects().All(r => r["from"].Objects().Any()), $"{overlay}: an ingress rule without `from` admits everyone.");

        var egress = spec["egress"].Objects().SelectMany(r => r["ports"].Objects())
            .Select(p => (From: (long)p["port"]!, To: (long?)p["endPort"] ?? (long)p["port"]!)).ToList();
        // DNS, fal; Redis in the cluster and managed (Azure Cache TLS, Azure Managed Redis, clustered shard ports); OTLP.
        foreach (var (needed, why) in new (long, string)[]
        {
            (53, "DNS"), (443, "fal"), (6379, "Redis"), (6380, "Azure Cache for Redis over TLS"), (10000, "Azure Managed Redis"),
            (8500, "Azure Managed Redis cluster shards"), (13000, "Azure Cache for Redis cluster shards"), (15000, "Azure Cache for Redis cluster shards over TLS"),
            (4317, "OTLP gRPC"), (4318, "OTLP HTTP"),
        })
        {
            Assert.True(egress.Any(p => p.From <= needed && needed <= p.To), $"{overlay}: the NetworkPolicy blocks egress on port {needed} ({why}).");
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Metrics_AreScrapedFromTheHttpPortByAnnotation(string overlay)
    {
        var o = RenderedOverlay.Of(overlay);
        var annotations = o.Deployment["spec"]!["template"]!["metadata"]!["annotations"].StringMap().ToDictionary();
        Assert.Equal("true", annotations.GetValueOrDefault("prometheus.io/scrape"));
        Assert.Equal("/metrics", annotations.GetValueOrDefault("prometheus.io/path"));
        Assert.Equal(o.HttpContainerPort.ToString(System.Globalization.CultureInfo.InvariantCulture), annotations.GetValueOrDefault("prometheus.io/port"));
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Image_IsPinnedToARegistryAndTag(string overlay)
    {
        var image = RenderedOverlay.Of(overlay).Container["image"].Text() ?? "";
        var tag = image.Contains(':', StringComparison.Ordinal) ? image[(image.LastIndexOf(':') + 1)..] : "";
        Assert.True(image.Contains('/', StringComparison.Ordinal), $"{overlay}: image '{image}' names no registry; set it in the overlay's images.");
        Assert.True(tag.Length > 0 && tag != "latest" && !tag.Contains('/', StringComparison.Ordinal), $"{overlay}: image '{image}' should carry an explicit tag other than latest.");
    }

    /// <summary>A size default from README's settings table, e.g. "48 MiB".</summary>
    private static long ReadmeDefaultBytes(string setting)
    {
        var row = Repo.Read("README.md").Split('\n').FirstOrDefault(l => l.StartsWith($"| `{setting}`", StringComparison.Ordinal));
        Assert.True(row is not null, $"README.md has no settings row for {setting}.");
        var size = ReadmeSize().Match(row.Split('|', StringSplitOptions.RemoveEmptyEntries)[^1]);
        Assert.True(size.Success, $"README.md's default for {setting} is not a size in MiB: {row}");
        return long.Parse(size.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) * 1024 * 1024;
    }

    [GeneratedRegex(@"^\s*(\d+)\s*([kKmMgG]?)\s*$")]
    private static partial Regex NginxSize();

    [GeneratedRegex(@"(\d+) MiB")]
    private static partial Regex ReadmeSize();

    private static void AssertHttpProbe(RenderedOverlay o, JsonObject container, string probe, string expectedPath)
    {
        var http = container[probe]?["httpGet"];
        Assert.True(http is not null, $"{o.Name}: {probe} should be an httpGet probe.");
        Assert.True(http["path"].Text() == expectedPath, $"{o.Name}: {probe} checks {http["path"].Text()}, the gateway serves {expectedPath}.");
        var port = o.ResolveContainerPort(http["port"]);
        Assert.True(port == o.HttpContainerPort, $"{o.Name}: {probe} uses port {http["port"].Text()}, which is not the container's http port {o.HttpContainerPort}.");
    }

    private static void AssertSelects(string overlay, string what, JsonNode? selector, IReadOnlyDictionary<string, string?> podLabels)
    {
        var labels = selector.StringMap().ToList();
        Assert.True(labels.Count > 0, $"{overlay}: {what} has an empty selector.");
        foreach (var (key, value) in labels)
        {
            Assert.True(podLabels.TryGetValue(key, out var actual) && actual == value,
                $"{overlay}: {what} selects {key}={value}, but the gateway pods are labelled [{string.Join(", ", podLabels.Select(p => $"{p.Key}={p.Value}"))}].");
        }
    }
}
