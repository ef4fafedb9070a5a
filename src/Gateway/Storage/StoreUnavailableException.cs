namespace Gateway.Storage;

/// <summary>The store cannot be used right now; answered as 503 with Retry-After.</summary>
/// <remarks><c>BeforeSubmit</c>: nothing was sent to fal, so nothing was billed.</remarks>
public sealed class StoreUnavailableException(string message, Exception? inner = null, bool beforeSubmit = false) : Exception(message, inner)
{
    public bool BeforeSubmit { get; } = beforeSubmit;
}
