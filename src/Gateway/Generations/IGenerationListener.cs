using Gateway.Storage;

namespace Gateway.Generations;

/// <summary>
/// Told when a generation is accepted and when it ends (exactly once per generation across replicas:
/// only the replica whose store write ended it is told). History, limits, metrics and live events hook in here.
/// </summary>
internal interface IGenerationListener
{
    Task OnSubmittedAsync(GenerationRecord record, CancellationToken cancellationToken);

    Task OnEndedAsync(GenerationRecord record, CancellationToken cancellationToken);
}
