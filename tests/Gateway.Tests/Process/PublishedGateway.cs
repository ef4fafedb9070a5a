namespace Gateway.Tests.Process;

/// <summary>
/// <c>dotnet publish src/Gateway -c Release -a {arch}</c> into a temporary directory, once per run of the process
/// tests (a fixture of their collection): what the Dockerfile ships (self-contained and trimmed), not what the test
/// build left in bin/.
/// </summary>
public sealed class PublishedGateway : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "gateway-publish-" + Guid.NewGuid().ToString("N"));

    /// <summary>The gateway's own executable, as the image's entry point runs it.</summary>
    public string Executable => ProcessGateway.PublishedExecutable(_directory);

    /// <summary>The publish output, as the image's /app holds it.</summary>
    public string OutputDirectory => _directory;

    public async ValueTask InitializeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        try
        {
            await ProcessGateway.PublishAsync(_directory, timeout.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            throw new TimeoutException("dotnet publish did not finish in 10 minutes.");
        }
    }

    public ValueTask DisposeAsync()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // a temp directory left behind is harmless
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>The process tests run one at a time: each starts a gateway process; the image's build is published once for them.</summary>
[CollectionDefinition(nameof(GatewayProcesses))]
public sealed class GatewayProcesses : ICollectionFixture<PublishedGateway>;
