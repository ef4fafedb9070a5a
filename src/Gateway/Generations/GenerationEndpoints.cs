using System.Security.Claims;
using Gateway.Clients;
using Gateway.Hosting;
using Gateway.Links;
using Gateway.Storage;
using Gateway.Upstream;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Gateway.Generations;

internal static class GenerationEndpoints
{
    public static RouteGroupBuilder MapGenerations(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").RequireAuthorization().WithTags("Generations");

        group.MapPost("/generations", SubmitGeneration)
            .WithName(nameof(SubmitGeneration))
            .WithSummary("Submit a text-to-image job")
            .WithDescription("Validates the input, submits it to fal's queue and answers 202 with the Generation and its Location.")
            .Accepts<GenerateRequest>("application/json")
            .WithIdempotency()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesUpstreamProblems();

        group.MapPost("/edits", SubmitEdit)
            .WithName(nameof(SubmitEdit))
            .WithSummary("Submit an image-edit job")
            .Accepts<EditRequest>("application/json")
            .WithIdempotency()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesUpstreamProblems();

        group.MapGet("/generations", ListGenerations)
            .WithName(nameof(ListGenerations))
            .WithSummary("The caller's own generations, newest first")
            .WithDescription("Cursor pagination: pass next_cursor as cursor; generations submitted meanwhile never shift later pages.")
            .ProducesValidationProblem();

        group.MapGet("/generations/{id}", GetGeneration)
            .WithName(nameof(GetGeneration))
            .WithSummary("The job: status, and result or error once done")
            .ProducesUpstreamProblems();

        group.MapGet("/generations/{id}/status", GetGenerationStatus)
            .WithName(nameof(GetGenerationStatus))
            .WithSummary("Status only; cheap, safe to poll every 100 ms")
            .ProducesUpstreamProblems();

        group.MapGet("/generations/{id}/result", GetGenerationResult)
            .WithName(nameof(GetGenerationResult))
            .WithSummary("The result; 202 with Retry-After while pending; the failure as a problem once failed")
            .ProducesUpstreamProblems();

        group.MapGet("/generations/{id}/events", GetGenerationEvents)
            .WithName(nameof(GetGenerationEvents))
            .WithSummary("Server-Sent Events until the job ends: status, then completed or failed")
            .WithDescription("Authenticated by the caller's key or token, or by the ticket that links.events carries (for a browser's EventSource).")
            .AcceptsLinkTicket(GenerationLinks.EventsResource)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        group.MapPost("/generations/{id}/cancel", CancelGeneration)
            .WithName(nameof(CancelGeneration))
            .WithSummary("Ask fal to cancel the job (it may still complete)")
            .ProducesUpstreamProblems();

        return group;
    }

    public static Task<Results<Accepted<GenerationResponse>, GenerationJson, ProblemHttpResult>> SubmitGeneration(
        GenerateRequest request, ClaimsPrincipal user, GenerationSubmitter submitter, GenerationService service, GenerationMapper mapper, ClientLimiter limiter, IOptions<GenerationOptions> options, HttpContext httpContext) =>
        SubmitAsync(submitter.GenerateModel, request, user, submitter, service, mapper, limiter, options.Value, httpContext);

    public static Task<Results<Accepted<GenerationResponse>, GenerationJson, ProblemHttpResult>> SubmitEdit(
        EditRequest request, ClaimsPrincipal user, GenerationSubmitter submitter, GenerationService service, GenerationMapper mapper, ClientLimiter limiter, IOptions<GenerationOptions> options, HttpContext httpContext) =>
        SubmitAsync(submitter.EditModel, request, user, submitter, service, mapper, limiter, options.Value, httpContext);

    /// <summary>
    /// Takes the client's limit units first (given back when fal refused the submit), submits, and with
    /// <c>Prefer: wait</c> holds the answer until the job ends or the wait runs out.
    /// </summary>
    private static async Task<Results<Accepted<GenerationResponse>, GenerationJson, ProblemHttpResult>> SubmitAsync(
        string model, ImageRequest request, ClaimsPrincipal user, GenerationSubmitter submitter, GenerationService service, GenerationMapper mapper, ClientLimiter limiter, GenerationOptions options, HttpContext httpContext)
    {
        var owner = user.Owner();
        var (decision, record) = await limiter.RunAsync(
            owner, request.NumImages ?? 1, httpContext.Response.Headers,
            () => submitter.SubmitAsync(owner, model, request),
            submitted => LimitSettlement.Commit(submitted.Id),
            // fal answered no (or was never reached): nothing is billed, so nothing is counted. A timed-out
            // submit keeps its units: fal may have queued, and will bill, the job.
            e => e is FalUpstreamException { Failure.Kind: not FalFailureKind.Timeout } or StoreUnavailableException { BeforeSubmit: true });
        if (record is null)
        {
            return LimitProblems.LimitExceeded(decision);
        }

        var links = GenerationLinks.For(record.Id);
        if (PreferWait.Requested(httpContext.Request, options) is { } wait)
        {
            PreferWait.Applied(httpContext.Response, wait);
            var snapshot = await service.WaitForEndAsync(record, wait, httpContext.RequestAborted);
            if (snapshot.Record.IsTerminal)
            {
                return await FinishedAsync(snapshot, service, mapper, httpContext.Request, links.Self, httpContext.RequestAborted);
            }

            return TypedResults.Accepted(links.Self, mapper.ToResponse(snapshot.Record, snapshot.Live));
        }

        return TypedResults.Accepted(links.Self, mapper.ToResponse(record, null));
    }

    private static async Task<GenerationJson> FinishedAsync(
        GenerationSnapshot snapshot, GenerationService service, GenerationMapper mapper, HttpRequest request, string? location, CancellationToken cancellationToken)
    {
        var id = snapshot.Record.Id;
        var result = snapshot.Record.Status == GenerationStatus.Completed ? await service.GetResultAsync(snapshot.Record, cancellationToken) : null;
        return new GenerationJson(mapper.ToResponse(snapshot.Record, snapshot.Live), result, service.PartsOf(snapshot.Record, request), location);
    }

    public static async Task<Results<Ok<GenerationPage>, ValidationProblem>> ListGenerations(
        ClaimsPrincipal user, IGenerationHistory history, GenerationService service, GenerationMapper mapper, CancellationToken cancellationToken,
        int? limit = null, string? cursor = null)
    {
        var take = limit ?? 20;
        if (take is < 1 or > 100)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["limit"] = ["limit must be from 1 to 100."] });
        }

        HistoryCursor? after = null;
        if (cursor is not null)
        {
            if (!HistoryCursor.TryDecode(cursor, out var decoded))
            {
                return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["cursor"] = ["cursor is not one this gateway returned as next_cursor."] });
            }

            after = decoded;
        }

        var owner = user.Owner();
        var entries = await history.ListAsync(owner, after, take + 1);
        var page = entries.Take(take).ToList();
        var records = await Task.WhenAll(page.Select(e => service.FindAsync(owner, e.Id, cancellationToken).AsTask()));
        var items = records.OfType<GenerationRecord>().Select(r => mapper.ToResponse(r, null)).ToList();
        return TypedResults.Ok(new GenerationPage(items, entries.Count > take ? page[^1].Encode() : null));
    }

    public static async Task<Results<GenerationJson, ProblemHttpResult>> GetGeneration(
        string id, ClaimsPrincipal user, GenerationService service, GenerationMapper mapper, IOptions<GenerationOptions> options, HttpContext httpContext, CancellationToken cancellationToken)
    {
        if (await service.FindAsync(user.Owner(), id, cancellationToken) is not { } record)
        {
            return GenerationProblems.NotFound(id);
        }

        GenerationSnapshot snapshot;
        if (PreferWait.Requested(httpContext.Request, options.Value) is { } wait)
        {
            PreferWait.Applied(httpContext.Response, wait);
            snapshot = await service.WaitForEndAsync(record, wait, cancellationToken);
        }
        else
        {
            snapshot = await service.ObserveAsync(record, logs: false, cancellationToken);
        }

        return await FinishedAsync(snapshot, service, mapper, httpContext.Request, null, cancellationToken);
    }

    public static async Task<Results<GenerationEventStream.Result, ProblemHttpResult>> GetGenerationEvents(
        string id, ClaimsPrincipal user, GenerationService service, GenerationEventStream events, GracefulShutdown shutdown, HttpRequest request, CancellationToken cancellationToken)
    {
        if (shutdown.Draining)
        {
            request.HttpContext.Response.Headers.RetryAfter = "1";
            return TypedResults.Problem("This replica is shutting down; reconnect and another replica will serve the stream.",
                statusCode: StatusCodes.Status503ServiceUnavailable, title: "Shutting down", type: ProblemTypes.ShuttingDown);
        }

        if (await service.FindAsync(user.Owner(), id, cancellationToken) is not { } record)
        {
            return GenerationProblems.NotFound(id);
        }

        return events.For(record, request.Headers["Last-Event-ID"].FirstOrDefault());
    }

    public static async Task<Results<Ok<StatusResponse>, ProblemHttpResult>> GetGenerationStatus(
        string id, ClaimsPrincipal user, GenerationService service, GenerationMapper mapper, CancellationToken cancellationToken, bool logs = false)
    {
        if (await service.FindAsync(user.Owner(), id, cancellationToken) is not { } record)
        {
            return GenerationProblems.NotFound(id);
        }

        var snapshot = await service.ObserveAsync(record, logs, cancellationToken);
        return TypedResults.Ok(mapper.ToStatus(snapshot, logs));
    }

    public static async Task<Results<ResultJson, Accepted<StatusResponse>, ProblemHttpResult>> GetGenerationResult(
        string id, ClaimsPrincipal user, GenerationService service, GenerationMapper mapper, HttpResponse response, CancellationToken cancellationToken)
    {
        if (await service.FindAsync(user.Owner(), id, cancellationToken) is not { } record)
        {
            return GenerationProblems.NotFound(id);
        }

        var snapshot = await service.ObserveAsync(record, logs: false, cancellationToken);
        switch (snapshot.Record.Status)
        {
            case GenerationStatus.Completed:
                var result = await service.GetResultAsync(snapshot.Record, cancellationToken);
                return result is null
                    ? GenerationProblems.ResultExpired(id)
                    : new ResultJson(result, service.PartsOf(snapshot.Record, response.HttpContext.Request));
            case GenerationStatus.Failed:
                return GenerationProblems.FromGenerationError(snapshot.Record.Error!);
            default:
                response.Headers.RetryAfter = "1";
                var status = mapper.ToStatus(snapshot, logs: false);
                return TypedResults.Accepted(status.Links.Result, status);
        }
    }

    public static async Task<Results<Accepted<CancelResponse>, ProblemHttpResult>> CancelGeneration(
        string id, ClaimsPrincipal user, GenerationService service, CancellationToken cancellationToken)
    {
        if (await service.FindAsync(user.Owner(), id, cancellationToken) is not { } record)
        {
            return GenerationProblems.NotFound(id);
        }

        return await service.CancelAsync(record, cancellationToken) switch
        {
            FalCancelOutcome.AlreadyCompleted => TypedResults.Problem(
                title: "The generation has already ended",
                detail: $"Generation '{id}' has already completed and cannot be cancelled.",
                statusCode: StatusCodes.Status409Conflict,
                type: ProblemTypes.AlreadyCompleted),
            _ => TypedResults.Accepted(GenerationLinks.For(id).Self, new CancelResponse("CANCELLATION_REQUESTED")),
        };
    }
}
