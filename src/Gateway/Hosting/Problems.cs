namespace Gateway.Hosting;

internal static class Problems
{
    /// <summary>Documents the upstream failures every fal-backed route can answer (the contract's table).</summary>
    public static RouteHandlerBuilder ProducesUpstreamProblems(this RouteHandlerBuilder builder) => builder
        .ProducesProblemFor(StatusCodes.Status422UnprocessableEntity,
            "fal refused the input (validation, content policy): errors holds fal's field errors, fal_status its status code.")
        .ProducesProblemFor(StatusCodes.Status429TooManyRequests, "fal is rate limiting the gateway; Retry-After, when sent, says when to try again.")
        .ProducesProblemFor(StatusCodes.Status502BadGateway,
            "fal failed to answer (5xx after bounded retries, unreachable, an answer that makes no sense), or the gateway's FAL key is refused.")
        .ProducesProblemFor(StatusCodes.Status503ServiceUnavailable,
            "fal cannot take requests now: its circuit is open after repeated failures, or the fal account has no credit.")
        .ProducesProblemFor(StatusCodes.Status504GatewayTimeout, "fal did not answer in time.")
        .WithResponseHeader("Retry-After", "Seconds to wait before trying again.",
            [StatusCodes.Status429TooManyRequests, StatusCodes.Status503ServiceUnavailable], integer: true, example: "2");

    /// <summary>Documents the 503 of a route that reads or writes the store (Redis) when it is unreachable.</summary>
    public static RouteHandlerBuilder ProducesStoreProblems(this RouteHandlerBuilder builder) => builder
        .ProducesProblemFor(StatusCodes.Status503ServiceUnavailable,
            "The gateway's store (Redis) is briefly unreachable; nothing was sent to fal. Retry-After says when to try again.")
        .WithResponseHeader("Retry-After", "Seconds to wait before trying again.",
            [StatusCodes.Status503ServiceUnavailable], integer: true, example: "2");
}
