using Gateway.Clients;
using Gateway.Generations;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Gateway.Hosting;

/// <summary>Problem type URIs (RFC 9457 <c>type</c>): <c>urn:mai-image-gateway:problem:{slug}</c>, listed in the README.</summary>
public static class ProblemTypes
{
    public const string Prefix = "urn:mai-image-gateway:problem:";

    public static string For(string slug) => Prefix + slug;
}

internal static class Problems
{
    public static ProblemHttpResult GenerationNotFound(string id) => TypedResults.Problem(
        title: "Generation not found",
        detail: $"There is no generation '{id}' for this client.",
        statusCode: StatusCodes.Status404NotFound,
        type: ProblemTypes.For("not-found"));

    public static ProblemHttpResult ResultExpired(string id) => TypedResults.Problem(
        title: "Result no longer kept",
        detail: $"Generation '{id}' completed, but its result has expired from the gateway's store.",
        statusCode: StatusCodes.Status410Gone,
        type: ProblemTypes.For("result-expired"));

    public static ProblemHttpResult FromGenerationError(GenerationError error)
    {
        var extensions = new Dictionary<string, object?> { ["fal_status"] = error.FalStatus, ["fal_error_type"] = error.FalErrorType };
        if (error.Errors is not null)
        {
            extensions["errors"] = error.Errors;
        }

        return TypedResults.Problem(error.Detail, statusCode: error.Status, title: error.Title, type: error.Type, extensions: extensions);
    }

    /// <summary>A client limit refused the submit before anything reached fal (headers are written by the decision).</summary>
    public static ProblemHttpResult LimitExceeded(LimitDecision decision) => TypedResults.Problem(
        title: "Client limit reached",
        detail: decision.RefusalDetail(),
        statusCode: StatusCodes.Status429TooManyRequests,
        type: ProblemTypes.For("limit-exceeded"),
        extensions: new Dictionary<string, object?>
        {
            ["limits"] = decision.ExceededNames(),
            ["retry_after_seconds"] = decision.RetryAfterSeconds,
        });

    /// <summary>Documents the upstream failures every fal-backed route can answer (the contract's table).</summary>
    public static RouteHandlerBuilder ProducesUpstreamProblems(this RouteHandlerBuilder builder) => builder
        .ProducesProblem(StatusCodes.Status401Unauthorized)
        .ProducesProblem(StatusCodes.Status404NotFound)
        .ProducesProblem(StatusCodes.Status422UnprocessableEntity)
        .ProducesProblem(StatusCodes.Status429TooManyRequests)
        .ProducesProblem(StatusCodes.Status502BadGateway)
        .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
        .ProducesProblem(StatusCodes.Status504GatewayTimeout);
}
