using Gateway.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Gateway.Generations;

internal static class GenerationProblems
{
    public static ProblemHttpResult NotFound(string id) => TypedResults.Problem(
        title: "Generation not found",
        detail: $"There is no generation '{id}' for this client.",
        statusCode: StatusCodes.Status404NotFound,
        type: ProblemTypes.NotFound);

    public static ProblemHttpResult ResultExpired(string id) => TypedResults.Problem(
        title: "Result no longer kept",
        detail: $"Generation '{id}' completed, but its result has expired from the gateway's store.",
        statusCode: StatusCodes.Status410Gone,
        type: ProblemTypes.ResultExpired);

    public static ProblemHttpResult FromGenerationError(GenerationError error)
    {
        // Extensions are present when known, never null (the contract's Problem schema).
        var extensions = new Dictionary<string, object?>();
        if (error.FalStatus is { } falStatus)
        {
            extensions["fal_status"] = falStatus;
        }

        if (error.FalErrorType is not null)
        {
            extensions["fal_error_type"] = error.FalErrorType;
        }

        if (error.Errors is not null)
        {
            extensions["errors"] = error.Errors;
        }

        return TypedResults.Problem(error.Detail, statusCode: error.Status, title: error.Title, type: error.Type, extensions: extensions);
    }
}
