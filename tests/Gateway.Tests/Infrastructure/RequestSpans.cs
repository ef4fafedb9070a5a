using System.Diagnostics;

namespace Gateway.Tests.Infrastructure;

/// <summary>
/// ASP.NET Core's request spans, recorded as they end, from every gateway host in this test process (tell them apart
/// by their tags: a request id, a path). Listening samples every request in full while it is alive.
/// </summary>
public sealed class RequestSpans : IDisposable
{
    private readonly List<Activity> _ended = [];
    private readonly ActivityListener _listener;

    public RequestSpans()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Microsoft.AspNetCore",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                lock (_ended)
                {
                    _ended.Add(activity);
                }
            },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    /// <summary>The spans ended so far, as a copy.</summary>
    public IReadOnlyList<Activity> Ended
    {
        get
        {
            lock (_ended)
            {
                return [.. _ended];
            }
        }
    }

    public void Dispose() => _listener.Dispose();
}
