using Gateway.Clients;

namespace Gateway.Generations;

/// <summary>Frees a generation's concurrency slot when it ends.</summary>
internal sealed class LimitsGenerationListener(ClientLimiter limiter) : IGenerationListener
{
    public Task OnSubmittedAsync(GenerationRecord record, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task OnEndedAsync(GenerationRecord record, CancellationToken cancellationToken) => limiter.EndAsync(record.Client, record.Id);
}

/// <summary>Tells the limits whether a generation holding a slot has ended (or is gone from the store).</summary>
internal sealed class GenerationEnds(IGenerationStore store) : IGenerationEnds
{
    public async Task<bool> HasEndedAsync(string generationId) =>
        await store.GetAsync(generationId, CancellationToken.None) is null or { IsTerminal: true };
}
