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
            .DescribesSubmit();

        group.MapPost("/edits", SubmitEdit)
            .WithName(nameof(SubmitEdit))
            .WithSummary("Submit an image-edit job")
            .WithDescription("Validates the input (one image in image_urls: an http(s) URL, e.g. from POST /v1/files, or a data: URI), "
                + "submits it to fal's edit model and answers 202 with the Generation and its Location.")
            .Accepts<EditRequest>("application/json")
            .DescribesSubmit();

        // Through a Delegate variable so that the Request Delegate Generator leaves this route to the runtime factory: for a query
        // parameter that does not parse (here limit=1e3) the generated code answers a bare 400, where the factory throws the
        // BadHttpRequestException that GatewayExceptionHandler turns into a problem naming the parameter.
        Delegate listGenerations = ListGenerations;
#pragma warning disable RDG002 // intended: the runtime factory builds this one
        group.MapGet("/generations", listGenerations)
            .WithName(nameof(ListGenerations))
            .WithSummary("The caller's own generations, newest first")
            .WithDescription("Each item carries the prompt, the options chosen and, once completed, the images: enough for a gallery in one request. "
                + "Cursor pagination: pass next_cursor as cursor; generations submitted meanwhile never shift later pages.")
            .DescribesResponse(StatusCodes.Status200OK, "A page of the caller's generations.")
            .ProducesProblemFor(StatusCodes.Status400BadRequest, "limit is not from 1 to 100, or cursor is not one this gateway returned (errors names it).")
            .ProducesStoreProblems();
#pragma warning restore RDG002

        group.MapGet("/generations/{id}", GetGeneration)
            .WithName(nameof(GetGeneration))
            .WithSummary("The job: status, and result or error once done")
            .WithPreferWait(StatusCodes.Status200OK)
            .DescribesResponse(StatusCodes.Status200OK, "The Generation (with Prefer: wait, once it ended or the wait ran out).")
            .ProducesNotFound()
            .ProducesUpstreamProblems()
            .ProducesStoreProblems();

        // Through a Delegate variable so that the Request Delegate Generator leaves this route to the runtime factory: for a query
        // parameter that does not parse (here logs=maybe) the generated code answers a bare 400, where the factory throws the
        // BadHttpRequestException that GatewayExceptionHandler turns into a problem naming the parameter.
        Delegate getGenerationStatus = GetGenerationStatus;
#pragma warning disable RDG002 // intended: the runtime factory builds this one
        group.MapGet("/generations/{id}/status", getGenerationStatus)
            .WithName(nameof(GetGenerationStatus))
            .WithSummary("Status only; cheap, safe to poll every 100 ms")
            .DescribesResponse(StatusCodes.Status200OK, "The status (and fal's logs with logs=true).")
            .ProducesProblemFor(StatusCodes.Status400BadRequest, "logs is not true or false (errors names it).")
            .ProducesNotFound()
            .ProducesUpstreamProblems()
            .ProducesStoreProblems();
#pragma warning restore RDG002

        group.MapGet("/generations/{id}/result", GetGenerationResult)
            .WithName(nameof(GetGenerationResult))
            .WithSummary("The result; 202 with the status while pending; the failure as a problem once failed")
            .WithDescription("200 answers the model's output ({images, description}); 202 answers the Status (its status is IN_QUEUE or "
                + "IN_PROGRESS) with Retry-After: tell them apart by the status code, or by `images` versus `status` in the body.")
            .DescribesResponse(StatusCodes.Status200OK, "The generation completed: the model's output as fal returned it.")
            .DescribesResponse(StatusCodes.Status202Accepted, "Still pending: the Status; ask again after Retry-After.")
            .WithResponseHeader("Retry-After", "Seconds to wait before asking again.", [StatusCodes.Status202Accepted], required: true, integer: true, example: "1")
            .WithResponseHeader("Location", "This result's URL.", [StatusCodes.Status202Accepted], required: true, example: "/v1/generations/764cabcf-b745-4b3e-ae38-1200304cf45b/result")
            .ProducesNotFound()
            .ProducesProblemFor(StatusCodes.Status410Gone, "The generation completed, but its result has expired from the gateway's store.")
            .ProducesProblemFor(StatusCodes.Status422UnprocessableEntity, "The generation failed because fal refused its input (the Generation's error, as a problem).")
            .ProducesProblemFor(StatusCodes.Status502BadGateway, "The generation failed at fal (the Generation's error, as a problem).")
            .ProducesUpstreamProblems()
            .ProducesStoreProblems();

        group.MapGet("/generations/{id}/events", GetGenerationEvents)
            .WithName(nameof(GetGenerationEvents))
            .WithSummary("Server-Sent Events until the job ends: status, then completed or failed")
            .WithDescription("Authenticated by the caller's key or token, or by the ticket that links.events carries (for a browser's EventSource). `status` (data: Status) whenever the status or queue position changes, then exactly one `completed` or `failed` "
                + "(data: the Generation), then the stream ends. A comment line keeps the connection open; event ids let Last-Event-ID resume without repeats.")
            .AcceptsLinkTicket(GenerationLinks.EventsResource)
            .ProducesServerSentEvents(StatusCodes.Status200OK,
                ("status", typeof(StatusResponse)), ("completed", typeof(GenerationResponse)), ("failed", typeof(GenerationResponse)))
            .Produces(StatusCodes.Status204NoContent)
            .DescribesResponse(StatusCodes.Status200OK, "The event stream.")
            .DescribesResponse(StatusCodes.Status204NoContent, "Last-Event-ID names the terminal event: there is nothing more to send (EventSource stops reconnecting).")
            .WithRequestHeader("Last-Event-ID", "The id of the last event received (EventSource sends it when it reconnects): the stream resumes after it.", example: "q3")
            .ProducesNotFound()
            .ProducesProblemFor(StatusCodes.Status503ServiceUnavailable, "This replica is shutting down: reconnect (after Retry-After) and another replica serves the stream.")
            .WithResponseHeader("Retry-After", "Seconds to wait before reconnecting.", [StatusCodes.Status503ServiceUnavailable], integer: true, example: "1")
            .ProducesStoreProblems();

        group.MapPost("/generations/{id}/cancel", CancelGeneration)
            .WithName(nameof(CancelGeneration))
            .WithSummary("Ask fal to cancel the job (it may still complete)")
            .DescribesResponse(StatusCodes.Status202Accepted, "fal was asked to cancel; follow the Generation at Location.")
            .WithResponseHeader("Location", "The Generation's URL.", [StatusCodes.Status202Accepted], required: true, example: "/v1/generations/764cabcf-b745-4b3e-ae38-1200304cf45b")
            .ProducesNotFound()
            .ProducesProblemFor(StatusCodes.Status409Conflict, "The generation has already ended and cannot be cancelled.")
            .ProducesUpstreamProblems()
            .ProducesStoreProblems();

        return group;
    }

    /// <summary>What both submits answer: the Generation, its Location, the client's limits, Idempotency-Key and Prefer: wait.</summary>
    private static RouteHandlerBuilder DescribesSubmit(this RouteHandlerBuilder builder) => builder
        .DescribesResponse(StatusCodes.Status202Accepted, "Accepted: the Generation, pending. Location is its URL.")
        .DescribesResponse(StatusCodes.Status200OK, "With Prefer: wait, the generation ended in time: the finished Generation.")
        .WithResponseHeader("Location", "The Generation's URL.", [StatusCodes.Status200OK, StatusCodes.Status202Accepted], required: true,
            example: "/v1/generations/764cabcf-b745-4b3e-ae38-1200304cf45b")
        .WithIdempotency(StatusCodes.Status200OK, StatusCodes.Status202Accepted)
        .WithPreferWait(StatusCodes.Status200OK, StatusCodes.Status202Accepted)
        .WithClientLimits(StatusCodes.Status200OK, StatusCodes.Status202Accepted)
        .ProducesProblemFor(StatusCodes.Status400BadRequest, "The input is not valid (errors names each field), or the body is not JSON.")
        .ProducesProblemFor(StatusCodes.Status413PayloadTooLarge, "The body is larger than the gateway accepts.")
        .ProducesProblemFor(StatusCodes.Status415UnsupportedMediaType, "The body is not sent as JSON (Content-Type: application/json).")
        .ProducesUpstreamProblems()
        .ProducesStoreProblems();

    private static RouteHandlerBuilder ProducesNotFound(this RouteHandlerBuilder builder) =>
        builder.ProducesProblemFor(StatusCodes.Status404NotFound, "No generation with this id belongs to the caller (another client's answers the same).");

    /// <summary><c>Prefer: wait=N</c> on the route, and the <c>Preference-Applied</c> it answers with.</summary>
    private static RouteHandlerBuilder WithPreferWait(this RouteHandlerBuilder builder, params int[] statuses) => builder
        .WithRequestHeader("Prefer", "wait=N (RFC 7240): hold the answer up to N seconds (capped by the gateway) and answer the finished Generation if it ends in time.",
            example: "wait=10")
        .WithResponseHeader("Preference-Applied", "The wait that was honoured, when Prefer: wait was sent.", statuses, example: "wait=10");

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

    /// <param name="user">The caller.</param>
    /// <param name="request">The request (the host the image links are made for).</param>
    /// <param name="history">The caller's history.</param>
    /// <param name="service">The generations.</param>
    /// <param name="mapper">Makes the history items (and signs their links).</param>
    /// <param name="cancellationToken">The request's cancellation.</param>
    /// <param name="limit">How many items the page holds at most: 1 to 100 (default 20).</param>
    /// <param name="cursor">Where the page starts: the next_cursor of the page before (none for the first page).</param>
    public static async Task<Results<Ok<GenerationPage>, ValidationProblem>> ListGenerations(
        ClaimsPrincipal user, HttpRequest request, IGenerationHistory history, GenerationService service, GenerationMapper mapper,
        CancellationToken cancellationToken, int? limit = null, string? cursor = null)
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
        var items = await Task.WhenAll(records.OfType<GenerationRecord>().Select(async record =>
            mapper.ToHistoryItem(record, await service.GetHistoryImagesAsync(record, cancellationToken), service.PartsOf(record, request).ImageUrl)));
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

    /// <param name="id">The generation's id (fal's request id).</param>
    /// <param name="user">The caller.</param>
    /// <param name="service">The generations.</param>
    /// <param name="mapper">Makes the status (and signs its links).</param>
    /// <param name="cancellationToken">The request's cancellation.</param>
    /// <param name="logs">true: include fal's logs.</param>
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
