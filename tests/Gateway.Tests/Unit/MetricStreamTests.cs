using System.Diagnostics.Metrics;
using Gateway.Hosting;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;

namespace Gateway.Tests.Unit;

/// <summary>The one view over every instrument: whose streams are dropped, renamed, and given a smaller cardinality limit.</summary>
public sealed class MetricStreamTests
{
    [Fact]
    public void FixedLabelMeters_GetTheSmallerLimit_OthersTheSdkDefault()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = services.GetRequiredService<IMeterFactory>();
        var streams = ObservabilityExtensions.Streams(factory);

        foreach (var meterName in new[] { "System.Runtime", "Microsoft.AspNetCore.Server.Kestrel", "System.Net.Http" })
        {
            var meter = factory.Create(meterName);
            var stream = streams(meter.CreateCounter<long>("some.instrument"));
            Assert.True(stream is { CardinalityLimit: ObservabilityExtensions.FixedLabelCardinalityLimit, Name: null },
                $"{meterName}: limit {stream?.CardinalityLimit}, name {stream?.Name}");
        }

        // Requests carry route × status, the gateway's own metrics client names: the SDK's default (no view) for them.
        Assert.Null(streams(factory.Create("Microsoft.AspNetCore.Hosting").CreateHistogram<double>("http.server.request.duration")));
        Assert.Null(streams(factory.Create(GatewayMetrics.MeterName).CreateCounter<long>("gateway.client.limit_rejections")));
    }

    [Fact]
    public void RuntimeCountGauges_AreRenamed_AndKeepTheLimit()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = services.GetRequiredService<IMeterFactory>();
        var stream = ObservabilityExtensions.Streams(factory)(factory.Create("System.Runtime").CreateObservableGauge("dotnet.assembly.count", () => 1L));

        Assert.Equal("dotnet.assemblies.loaded", stream?.Name);
        Assert.Equal(ObservabilityExtensions.FixedLabelCardinalityLimit, stream?.CardinalityLimit);
    }

    [Fact]
    public void AnotherHostsMeter_IsDropped()
    {
        using var ours = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var theirs = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var instrument = theirs.GetRequiredService<IMeterFactory>().Create("System.Runtime").CreateCounter<long>("dotnet.gc.collections");

        Assert.Same(MetricStreamConfiguration.Drop, ObservabilityExtensions.Streams(ours.GetRequiredService<IMeterFactory>())(instrument));
    }
}
