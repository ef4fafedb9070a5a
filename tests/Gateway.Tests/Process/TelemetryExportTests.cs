using System.Security.Cryptography;
using Gateway.Tests.Infrastructure;
using Gateway.Tests.Infrastructure.Otlp;
using OpenTelemetry.Trace;
using SpanKind = Gateway.Tests.Infrastructure.Otlp.SpanKind;

namespace Gateway.Tests.Process;

/// <summary>
/// The gateway process configured only by the standard <c>OTEL_*</c> variables, as an operator sets them, exporting
/// to an OTLP receiver on loopback that decodes what arrives.
/// </summary>
[Collection(nameof(GatewayProcesses))]
public sealed class TelemetryExportTests(RedisServer redis, PublishedGateway published)
{
    private const string ServiceName = "images-gateway-under-test";
    private static readonly TimeSpan ArrivesWithin = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Traces_WithOnlyTheTracesEndpointSet_ArriveNamedByOtelServiceName_WithFalsRequestIdOnTheFalCalls()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        // The job runs long enough for the status read below to reach fal: a webhook that ended it first would leave
        // no later call to fal to look at.
        await using var world = await ProcessHarness.StartAsync(redis, published.Executable, webhooks: true, emulator: e => e.RunTime = TimeSpan.FromSeconds(3), settings: new Dictionary<string, string>
        {
            ["OTEL_SERVICE_NAME"] = ServiceName,
            ["OTEL_RESOURCE_ATTRIBUTES"] = "deployment.environment.name=process-test,service.namespace=images",
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = receiver.Url + "/v1/traces",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
        });
        using var client = world.Client();
        using var anonymous = world.Client(key: null);

        // What the cluster does all day: scrapes and probes. None of it may become a span.
        foreach (var path in new[] { "/metrics", "/health/live", "/health/ready", "/metrics" })
        {
            using var response = await anonymous.GetAsync(path, TestContext.Current.CancellationToken);
            Assert.True(response.IsSuccessStatusCode, $"{path} answered {(int)response.StatusCode}{world.Describe()}");
        }

        var id = await client.SubmitAsync(new { prompt = "a traced lighthouse" });
        // A call to fal about the job after the submit, made while it runs (250 ms in the stand-in): the first status
        // read with logs is never answered from the replica's memory. (A plain poll may be answered without one: the
        // webhook can end the job before the first poll, and an ended generation is read from memory.)
        using (var status = await client.GetAsync($"/v1/generations/{id}/status?logs=true", TestContext.Current.CancellationToken))
        {
            Assert.True(status.IsSuccessStatusCode, $"status answered {(int)status.StatusCode}{world.Describe()}");
        }

        await client.WaitUntilDoneAsync(id);

        ReceivedSpan? FalSubmit(OtlpReceiver r) => r.Spans.FirstOrDefault(s => s.Kind == SpanKind.Client
            && s.Attribute("http.request.method") == "POST" && s.Attribute("url.full")?.StartsWith(world.Fal.QueueBaseUrl, StringComparison.Ordinal) == true);
        ReceivedSpan? Webhook(OtlpReceiver r) => r.Spans.FirstOrDefault(s => s.Kind == SpanKind.Server && s.Attribute("http.route") == "/v1/webhooks/fal");
        var arrived = await receiver.WaitForAsync(r => FalSubmit(r) is not null && Webhook(r) is not null
            && r.Spans.Any(s => s.Scope.Contains("StackExchangeRedis", StringComparison.Ordinal)), ArrivesWithin);
        var spans = receiver.Spans;
        var seen = string.Join("\n", spans.Select(s => s.ToString()).Take(60));
        Assert.True(arrived, $"within {ArrivesWithin} the receiver did not get the submit to fal, the webhook and a Redis span; it got {spans.Count}:\n{seen}{world.Describe()}");

        Assert.All(spans, s => Assert.Equal(ServiceName, s.Resource.GetValueOrDefault("service.name")));
        Assert.All(spans, s => Assert.Equal("process-test", s.Resource.GetValueOrDefault("deployment.environment.name")));
        Assert.All(spans, s => Assert.Equal("images", s.Resource.GetValueOrDefault("service.namespace")));

        var submit = FalSubmit(receiver)!;
        Assert.True(submit.Attribute("fal.request_id") == id, $"the submit to fal carries fal.request_id {submit.Attribute("fal.request_id") ?? "(none)"}, not {id}:\n{submit}");
        var server = spans.Single(s => s.Kind == SpanKind.Server && s.TraceId == submit.TraceId && s.Attribute("http.route") == "/v1/generations");
        Assert.Equal(id, server.Attribute("fal.request_id"));
        Assert.Contains(spans, s => s.TraceId == submit.TraceId && s.Scope.Contains("StackExchangeRedis", StringComparison.Ordinal));

        // The later calls to fal about the same job (status while it ran, the result once done) name it too.
        var others = spans.Where(s => s.Kind == SpanKind.Client && s != submit && s.Attribute("url.full")?.Contains(id, StringComparison.Ordinal) == true).ToList();
        Assert.True(others.Count > 0, $"no other call to fal about {id} was traced:\n{seen}");
        Assert.All(others, s => Assert.Equal(id, s.Attribute("fal.request_id")));

        Assert.Equal(id, Webhook(receiver)!.Attribute("fal.request_id"));

        var operatorSpans = spans.Where(s => s.Attribute("url.path") is { } path && (path.StartsWith("/health", StringComparison.Ordinal) || path == "/metrics")).ToList();
        Assert.True(operatorSpans.Count == 0, $"scrapes and probes made spans:\n{string.Join("\n", operatorSpans)}");

        // Redis commands appear inside the work they belong to, not as a root span per PING of the health probe.
        var parentless = spans.Where(s => s.Scope.Contains("StackExchangeRedis", StringComparison.Ordinal) && s.Span.ParentSpanId.IsEmpty).ToList();
        Assert.True(parentless.Count == 0, $"{parentless.Count} Redis commands were traced outside any request, e.g. {parentless.FirstOrDefault()}");
    }

    /// <summary>
    /// The sampler an operator sets for heavy polling (README, Operations): <c>parentbased_traceidratio</c>, here with
    /// ratio 0, so the gateway starts no trace of its own yet continues one its caller sampled, and drops one its
    /// caller did not. The SDK reads the variables; this holds the gateway to not overriding them in code.
    /// </summary>
    [Fact]
    public async Task Traces_FollowOtelTracesSampler_ContinuingOnlyTheTracesTheCallerSampled()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        await using var world = await ProcessHarness.StartAsync(redis, published.Executable, settings: new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = receiver.Url + "/v1/traces",
            ["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio",
            ["OTEL_TRACES_SAMPLER_ARG"] = "0",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
        });
        // The suite runs in-process gateways beside this test, whose tracing instruments HttpClient in this process too
        // (and injects its own traceparent over a request's); instrumenting it here makes that so whatever runs beside.
        using var tracing = OpenTelemetry.Sdk.CreateTracerProviderBuilder().AddHttpClientInstrumentation().Build();
        // This client stands for a caller, so it sends the traceparent given here and no other.
        using var client = world.Client(traced: false);
        var sampled = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var declined = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        async Task GetUsageAsync(string? traceparent)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/usage");
            if (traceparent is not null)
            {
                request.Headers.Add("traceparent", traceparent);
            }

            using var response = await client.SendAsync(request, TestContext.Current.CancellationToken);
            Assert.True(response.IsSuccessStatusCode, $"/v1/usage answered {(int)response.StatusCode}{world.Describe()}");
        }

        // Root requests first (ratio 0: none sampled), and one whose caller declined; then the one its caller sampled.
        await GetUsageAsync(null);
        await GetUsageAsync(null);
        await GetUsageAsync($"00-{declined}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}-00");
        await GetUsageAsync($"00-{sampled}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}-01");

        var arrived = await receiver.WaitForAsync(r => r.Spans.Any(s => s.Kind == SpanKind.Server && s.TraceId == sampled), ArrivesWithin);
        Assert.True(arrived, $"within {ArrivesWithin} the sampled caller's trace {sampled} did not arrive; got {receiver.Spans.Count} spans:\n{string.Join("\n", receiver.Spans)}{world.Describe()}");
        // The batch exporter sends every 200 ms: spans ended before the sampled one have had five sends to arrive.
        await Task.Delay(TimeSpan.FromSeconds(1), TestContext.Current.CancellationToken);
        var servers = receiver.Spans.Where(s => s.Kind == SpanKind.Server).ToList();
        Assert.True(servers.All(s => s.TraceId == sampled),
            $"only the sampled caller's request may be traced; got server spans:\n{string.Join("\n", servers)}");
    }

    [Fact]
    public async Task Metrics_GoOverOtlpToo_WhenTheGeneralEndpointIsSet()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        await using var world = await ProcessHarness.StartAsync(redis, published.Executable, settings: new Dictionary<string, string>
        {
            ["OTEL_SERVICE_NAME"] = ServiceName,
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.Url,
            ["OTEL_METRIC_EXPORT_INTERVAL"] = "500",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
        });
        using var client = world.Client();
        var id = await client.SubmitAsync(new { prompt = "a measured lighthouse" });
        await client.WaitUntilDoneAsync(id);

        string[] expected = ["gateway.fal.call.duration", "gateway.client.submits", "http.server.request.duration", "gateway.redis.available"];
        var arrived = await receiver.WaitForAsync(r => expected.All(name => r.Metrics.Any(m => m.Metric.Name == name)) && r.Spans.Count > 0, ArrivesWithin);
        var names = receiver.Metrics.Select(m => m.Metric.Name).Distinct().Order(StringComparer.Ordinal).ToList();
        Assert.True(arrived, $"within {ArrivesWithin} the receiver got {receiver.Spans.Count} spans and these metrics: [{string.Join(", ", names)}]{world.Describe()}");
        Assert.All(receiver.Metrics, m => Assert.Equal(ServiceName, m.Resource.GetValueOrDefault("service.name")));
        Assert.Equal("s", receiver.Metrics.First(m => m.Metric.Name == "gateway.fal.call.duration").Metric.Unit);
    }
}
