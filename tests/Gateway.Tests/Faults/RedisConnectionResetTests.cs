using System.Net;
using Gateway.Clients;
using Gateway.Storage;
using Gateway.Tests.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Pipelines.Sockets.Unofficial;

namespace Gateway.Tests.Faults;

/// <summary>
/// Redis killed in the middle of a command: StackExchange.Redis then lets its socket layer's
/// <see cref="ConnectionResetException"/> (an IOException, not a RedisException) reach the caller. A CI run of
/// RedisOutageTests got a 500 "Unexpected error" for a submit whose limit script was cut off this way, where
/// every other request of the outage got the 503 + Retry-After the contract gives.
/// </summary>
public sealed class RedisConnectionResetTests(RedisServer redis)
{
    [Fact]
    public async Task Submit_WhoseLimitScriptIsCutOff_Answers503WithRetryAfter()
    {
        await using var harness = await GatewayHarness.StartAsync(redis, services: services =>
        {
            var real = services.Single(d => d.ServiceType == typeof(ILimitStore));
            services.Remove(real);
            services.AddSingleton<ILimitStore>(provider => new ResetOnAcquire((ILimitStore)(real.ImplementationFactory?.Invoke(provider)
                ?? ActivatorUtilities.CreateInstance(provider, real.ImplementationType!))));
        });

        using var response = await harness.Client().PostJsonAsync("/v1/generations", new { prompt = "cut off" });

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.NotNull(response.Headers.RetryAfter);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(0, harness.Fal.AcceptedSubmitCount);
    }

    [Fact]
    public void StoreProblemMapper_TakesAConnectionResetForAnUnreachableStore()
    {
        var mapper = new StoreProblemMapper(NullLogger<StoreProblemMapper>.Instance);
        var context = new DefaultHttpContext();

        var problem = mapper.TryMap(context, new ConnectionResetException("Connection reset by peer"));

        Assert.Equal(StatusCodes.Status503ServiceUnavailable, problem?.Status);
        Assert.True(context.Response.Headers.RetryAfter.Count > 0);
        Assert.Null(mapper.TryMap(new DefaultHttpContext(), new IOException("a client's body read failed"))); // not every IOException is Redis
    }

    private sealed class ResetOnAcquire(ILimitStore inner) : ILimitStore
    {
        public Task<LimitCounts> TryAcquireAsync(LimitWindows windows, ClientPolicy policy, int images, string leaseMember, TimeSpan leaseTtl) =>
            throw new ConnectionResetException("Connection reset by peer");

        public Task ReleaseAsync(LimitWindows windows, int images, long costMicros, string leaseMember) => inner.ReleaseAsync(windows, images, costMicros, leaseMember);

        public Task CommitAsync(LimitWindows windows, string leaseMember, string generationMember, TimeSpan leaseTtl) =>
            inner.CommitAsync(windows, leaseMember, generationMember, leaseTtl);

        public Task EndAsync(string client, string generationMember) => inner.EndAsync(client, generationMember);

        public Task<LimitCounts> ReadAsync(LimitWindows windows) => inner.ReadAsync(windows);

        public Task<IReadOnlyList<string>> InFlightAsync(LimitWindows windows) => inner.InFlightAsync(windows);
    }
}
