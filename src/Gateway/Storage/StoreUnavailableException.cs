namespace Gateway.Storage;

/// <summary>The store cannot be used right now; answered as 503 with Retry-After.</summary>
public sealed class StoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
