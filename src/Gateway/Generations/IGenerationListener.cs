
namespace Gateway.Generations;

/// <summary>
/// Told when a generation is accepted and when it ends (exactly once per generation across replicas:
/// only the replica whose store write ended it is told). History, limits, metrics and live events hook in here.
/// </summary>
internal interface IGenerationListener
{
    Task OnSubmittedAsync(GenerationRecord record, CancellationToken cancellationToken);

    /// <summary>
    /// Before a terminal record is stored (on the replica about to store it, which may still lose to another): a listener
    /// may add to the record what it will do about the end (e.g. "images pending copy") and make that work durable first.
    /// </summary>
    ValueTask<GenerationRecord> OnEndingAsync(GenerationRecord terminal, CancellationToken cancellationToken) => ValueTask.FromResult(terminal);

    Task OnEndedAsync(GenerationRecord record, CancellationToken cancellationToken);
}
