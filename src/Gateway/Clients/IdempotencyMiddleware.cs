using System.Security.Cryptography;
using System.Text;
using Gateway.Hosting;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace Gateway.Clients;

/// <summary>Marks a route whose POSTs honour <c>Idempotency-Key</c>.</summary>
internal sealed class IdempotentEndpointMetadata
{
    public static readonly IdempotentEndpointMetadata Instance = new();
}

/// <summary>
/// <c>Idempotency-Key</c> (draft-ietf-httpapi-idempotency-key-header), per client: the first attempt marks the
/// key in flight; a repeat with the same method, path and body gets the first answer replayed (status,
/// Location, body, plus <c>Idempotent-Replayed: true</c>) and never reaches fal; a different body is 422;
/// a repeat while the first is still running is 409. Only a successful (2xx) first answer is kept: after a
/// validation error, a limit (429) or a fal failure the key is free again, so a retry is tried afresh,
/// never answered with a stale refusal.
/// </summary>
/// <remarks>Its services are singletons, taken once here: resolving them per request cost every GET a few DI lookups.</remarks>
internal sealed partial class IdempotencyMiddleware(
    RequestDelegate next,
    IIdempotencyStore store,
    IOptions<IdempotencyOptions> options,
    IProblemDetailsService problems,
    ILogger<IdempotencyMiddleware> logger)
{
    public const string HeaderName = "Idempotency-Key";
    public const string ReplayedHeaderName = "Idempotent-Replayed";
    private const int MaxKeyLength = 255;

    /// <summary>Every other request (every GET, every poll) passes straight on, without a state machine of its own.</summary>
    public Task InvokeAsync(HttpContext context) =>
        !HttpMethods.IsPost(context.Request.Method)
        || context.GetEndpoint()?.Metadata.GetMetadata<IdempotentEndpointMetadata>() is null
        || !context.Request.Headers.TryGetValue(HeaderName, out var header)
        || context.User.Identity is not { IsAuthenticated: true, Name: { } client }
            ? next(context)
            : InvokeIdempotentAsync(context, header, client);

    private async Task InvokeIdempotentAsync(HttpContext context, StringValues header, string client)
    {
        if (ParseKey(header.ToString()) is not { } key)
        {
            await WriteProblemAsync(context, problems, StatusCodes.Status400BadRequest, ProblemTypes.IdempotencyKeyInvalid, "The Idempotency-Key is not valid",
                $"Idempotency-Key must be 1 to {MaxKeyLength} printable characters, optionally as a quoted string; send one key per request.",
                field: "Idempotency-Key");
            return;
        }

        var fingerprint = await FingerprintAsync(context.Request);
        // Kept per owner: each signed-in user of a client has keys of their own (a key holds no control character,
        // so the user's prefix cannot be forged by a key).
        var scoped = context.User.UserId() is { } user ? $"user:{user}\n{key}" : key;
        var keyHash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(scoped)));
        var owner = Guid.NewGuid().ToString("N");
        var existing = await store.TryBeginAsync(client, keyHash, new IdempotencyEntry(owner, fingerprint), options.Value.InFlightTtl);
        if (existing is not null)
        {
            await AnswerRepeatAsync(context, problems, existing, fingerprint, logger, client);
            return;
        }

        var original = context.Response.Body;
        using var buffer = new MemoryStream();
        context.Response.Body = buffer;
        var kept = false;
        try
        {
            await next(context);
            var status = context.Response.StatusCode;
            if (status is >= 200 and < 300)
            {
                var location = context.Response.Headers.Location.ToString();
                await store.CompleteAsync(client, keyHash,
                    new IdempotencyEntry(owner, fingerprint, status, location.Length == 0 ? null : location, context.Response.ContentType, buffer.ToArray()),
                    options.Value.Ttl);
                kept = true;
            }
        }
        finally
        {
            context.Response.Body = original;
            if (!kept)
            {
                await store.AbandonAsync(client, keyHash, owner);
            }
        }

        buffer.Position = 0;
        await buffer.CopyToAsync(original, context.RequestAborted);
    }

    private static async Task AnswerRepeatAsync(
        HttpContext context, IProblemDetailsService problems, IdempotencyEntry existing, string fingerprint, ILogger logger, string client)
    {
        if (existing.Fingerprint != fingerprint)
        {
            await WriteProblemAsync(context, problems, StatusCodes.Status422UnprocessableEntity, ProblemTypes.IdempotencyKeyReused,
                "The Idempotency-Key was used for a different request",
                "This Idempotency-Key was first sent with a different request body (or route); use a new key for a new request.");
            return;
        }

        if (!existing.Completed)
        {
            context.Response.Headers.RetryAfter = "1";
            await WriteProblemAsync(context, problems, StatusCodes.Status409Conflict, ProblemTypes.IdempotencyKeyInFlight,
                "The first request with this Idempotency-Key is still being processed",
                "A request with this Idempotency-Key is still being submitted; repeat it shortly to get its answer.");
            return;
        }

        LogReplayed(logger, client, existing.Status!.Value);
        var response = context.Response;
        response.StatusCode = existing.Status.Value;
        response.Headers[ReplayedHeaderName] = "true";
        if (existing.Location is not null)
        {
            response.Headers.Location = existing.Location;
        }

        if (existing.ContentType is not null)
        {
            response.ContentType = existing.ContentType;
        }

        await response.Body.WriteAsync(existing.Body ?? [], context.RequestAborted);
    }

    /// <summary>The draft's key is a structured-field string (<c>"…"</c>); a bare value is accepted too.</summary>
    private static string? ParseKey(string raw)
    {
        var key = raw.Trim();
        if (key.Length >= 2 && key[0] == '"' && key[^1] == '"')
        {
            key = key[1..^1];
        }

        return key.Length is > 0 and <= MaxKeyLength && !key.Contains(',', StringComparison.Ordinal) && key.All(c => c is >= ' ' and <= '~')
            ? key
            : null;
    }

    private static async Task<string> FingerprintAsync(HttpRequest request)
    {
        request.EnableBuffering();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes($"{request.Method} {request.Path}\n"));
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, request.HttpContext.RequestAborted)) > 0)
        {
            hash.AppendData(chunk, 0, read);
        }

        request.Body.Position = 0;
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static Task WriteProblemAsync(
        HttpContext context, IProblemDetailsService problems, int status, string type, string title, string detail, string? field = null)
    {
        context.Response.StatusCode = status;
        var problem = new ProblemDetails { Type = type, Title = title, Status = status, Detail = detail };
        if (field is not null)
        {
            // A refused header is a refused field: name it as validation problems do.
            problem.Extensions["errors"] = new Dictionary<string, string[]> { [field] = [detail] };
        }

        return problems.WriteAsync(new ProblemDetailsContext { HttpContext = context, ProblemDetails = problem }).AsTask();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Replayed the first answer ({Status}) to a repeated Idempotency-Key of {Client}")]
    private static partial void LogReplayed(ILogger logger, string client, int status);
}
