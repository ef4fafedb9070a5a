[assembly: AssemblyFixture(typeof(Gateway.Tests.Infrastructure.ThreadPoolWarmup))]

namespace Gateway.Tests.Infrastructure;

/// <summary>
/// Test classes run in parallel and each starts hosts with blocking calls (WebApplicationFactory.StartServer).
/// On a 2-core CI machine the thread pool starts with 2 threads and grows slowly, so bursts of loopback
/// requests could wait seconds for a thread and hit fal's 3 s test timeout. Start with enough threads.
/// </summary>
public sealed class ThreadPoolWarmup
{
    public ThreadPoolWarmup()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 64), Math.Max(io, 64));
    }
}
