using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace FalEmulator;

/// <summary>queue.fal.run (submit, status, stream, result, cancel) and fal.run (synchronous run).</summary>
internal static class QueueEndpoints
{
    public static IEndpointRouteBuilder MapQueue(this IEndpointRouteBuilder app)
    {
        app.MapPost("/run/{**endpoint}", Run);
        app.MapGet("/{owner}/{app}/requests/{id}/status", GetStatus);
        app.MapGet("/{owner}/{app}/requests/{id}/status/stream", StreamStatus);
        app.MapGet("/{owner}/{app}/requests/{id}", GetResult);
        app.MapPut("/{owner}/{app}/requests/{id}/cancel", Cancel);
        app.MapPost("/{**endpoint}", Submit);
        return app;
    }

    private static async Task<IResult> Submit(HttpContext context, string endpoint, EmulatorServices s)
    {
        s.State.CountSubmit();
        endpoint = endpoint.Trim('/');
        var (refusal, body, directives) = await AcceptCallAsync(context, endpoint, s);
        if (refusal is not null)
        {
            return refusal;
        }

        var fault = s.Faults.Take(FalOperation.Submit, null, directives);
        var dropAfterAccept = fault == FaultKinds.Drop;
        if (!dropAfterAccept && await s.Faults.Apply(context, fault, null) is { } faulted)
        {
            return faulted;
        }

        var (input, issues) = InputValidator.Validate(body, endpoint == InputValidator.Edit);
        if (input is null)
        {
            return FalErrors.Validation(context, issues);
        }

        if (int.TryParse(context.Request.Query["fal_max_queue_length"], CultureInfo.InvariantCulture, out var maxQueue)
            && s.Scheduler.QueueLength >= maxQueue)
        {
            context.Response.Headers.RetryAfter = "1";
            return FalErrors.Detail(context, StatusCodes.Status429TooManyRequests, "Queue is full", "queue_full");
        }

        var app = string.Join('/', endpoint.Split('/').Take(2));
        var webhook = context.Request.Query["fal_webhook"].ToString();
        var job = s.Scheduler.Submit(endpoint, app, Root(context), input, directives, webhook.Length > 0 ? webhook : null, StartTimeout(context),
            StoragePreferences.From(context.Request.Headers));
        s.State.CountAcceptedSubmit();

        if (dropAfterAccept)
        {
            // The job exists but the answer is lost: the case that makes a retried submit bill twice.
            context.Abort();
            return Results.Empty;
        }

        var response = new SubmitResponse(job.Id, job.ResponseUrl, job.StatusUrl, job.CancelUrl, "IN_QUEUE",
            s.Scheduler.QueuePosition(job) ?? 0, job.GatewayRequestId);
        return FalErrors.Json(context, StatusCodes.Status200OK, response, EmulatorJson.Default.SubmitResponse, job.Id);
    }

    private static async Task<IResult> GetStatus(HttpContext context, string owner, string app, string id, EmulatorServices s)
    {
        s.State.CountStatus(id);
        if (await Prepare(context, owner, app, id, FalOperation.Status, s) is { Error: { } error })
        {
            return error;
        }

        var job = s.Scheduler.Find(id)!;
        var status = Status(job, WantsLogs(context), s.Scheduler);
        return FalErrors.Json(context, job.Phase == JobPhase.Completed ? StatusCodes.Status200OK : StatusCodes.Status202Accepted,
            status, EmulatorJson.Default.StatusResponse, job.Id);
    }

    private static async Task<IResult> StreamStatus(HttpContext context, string owner, string app, string id, EmulatorServices s)
    {
        s.State.CountStatus(id);
        if (await Prepare(context, owner, app, id, FalOperation.StatusStream, s) is { Error: { } error })
        {
            return error;
        }

        var job = s.Scheduler.Find(id)!;
        var logs = WantsLogs(context);
        var ct = context.RequestAborted;
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers["x-fal-request-id"] = job.Id;
        await context.Response.StartAsync(ct);

        string? last = null;
        try
        {
            while (true)
            {
                var changed = s.Scheduler.Changed;
                var completed = job.Phase == JobPhase.Completed;
                var json = JsonSerializer.Serialize(Status(job, logs, s.Scheduler), EmulatorJson.Default.StatusResponse);
                if (json != last)
                {
                    await context.Response.WriteAsync($"data: {json}\n\n", Encoding.UTF8, ct);
                    await context.Response.Body.FlushAsync(ct);
                    last = json;
                }

                if (completed)
                {
                    break;
                }

                try
                {
                    await changed.WaitAsync(s.Options.StreamPingInterval, s.Time, ct);
                }
                catch (TimeoutException)
                {
                    await context.Response.WriteAsync(": ping\n\n", Encoding.UTF8, ct);
                    await context.Response.Body.FlushAsync(ct);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // the client went away
        }

        return Results.Empty;
    }

    private static async Task<IResult> GetResult(HttpContext context, string owner, string app, string id, EmulatorServices s)
    {
        s.State.CountResult(id);
        if (await Prepare(context, owner, app, id, FalOperation.Result, s) is { Error: { } error })
        {
            return error;
        }

        var job = s.Scheduler.Find(id)!;
        if (job.Outcome is not { } outcome)
        {
            return FalErrors.Detail(context, StatusCodes.Status400BadRequest, "Request is still in progress", requestId: job.Id);
        }

        return Outcome(context, job, outcome);
    }

    private static async Task<IResult> Cancel(HttpContext context, string owner, string app, string id, EmulatorServices s)
    {
        s.State.CountCancel();
        if (s.Auth.Check(context) is { } unauthorized)
        {
            return unauthorized;
        }

        var job = Lookup(owner, app, id, s);
        if (await s.Faults.Apply(context, s.Faults.Take(FalOperation.Cancel, id, job?.Directives), id) is { } faulted)
        {
            return faulted;
        }

        if (job is null)
        {
            return FalErrors.Json(context, StatusCodes.Status404NotFound, new CancelResponse("NOT_FOUND"), EmulatorJson.Default.CancelResponse);
        }

        return s.Scheduler.Cancel(job)
            ? FalErrors.Json(context, StatusCodes.Status202Accepted, new CancelResponse("CANCELLATION_REQUESTED"), EmulatorJson.Default.CancelResponse, job.Id)
            : FalErrors.Json(context, StatusCodes.Status400BadRequest, new CancelResponse("ALREADY_COMPLETED"), EmulatorJson.Default.CancelResponse, job.Id);
    }

    private static async Task<IResult> Run(HttpContext context, string endpoint, EmulatorServices s)
    {
        s.State.CountRun();
        endpoint = endpoint.Trim('/');
        var (refusal, body, directives) = await AcceptCallAsync(context, endpoint, s);
        if (refusal is not null)
        {
            return refusal;
        }

        if (await s.Faults.Apply(context, s.Faults.Take(FalOperation.Run, null, directives), null) is { } faulted)
        {
            return faulted;
        }

        var (input, issues) = InputValidator.Validate(body, endpoint == InputValidator.Edit);
        if (input is null)
        {
            return FalErrors.Validation(context, issues);
        }

        var app = string.Join('/', endpoint.Split('/').Take(2));
        var job = s.Scheduler.Submit(endpoint, app, Root(context), input, directives, webhookUrl: null, StartTimeout(context),
            StoragePreferences.From(context.Request.Headers));
        await job.Completed.Task.WaitAsync(context.RequestAborted);
        return Outcome(context, job, job.Outcome!);
    }

    private static RawJsonResult Outcome(HttpContext context, Job job, JobOutcome outcome)
    {
        context.Response.Headers["x-fal-request-id"] = job.Id;
        if (outcome.ErrorType is { } errorType && outcome.StatusCode >= 500)
        {
            context.Response.Headers["X-Fal-Error-Type"] = errorType;
        }

        if (outcome.TimeoutType is { } timeoutType)
        {
            context.Response.Headers["X-Fal-Request-Timeout-Type"] = timeoutType;
        }

        return new RawJsonResult(outcome.StatusCode, outcome.Body);
    }

    /// <summary>Auth, then a fault, then the job's existence; Error is the answer when the call stops there.</summary>
    private static async Task<(IResult? Error, Job? Job)> Prepare(HttpContext context, string owner, string app, string id, FalOperation operation, EmulatorServices s)
    {
        if (s.Auth.Check(context) is { } unauthorized)
        {
            return (unauthorized, null);
        }

        var job = Lookup(owner, app, id, s);
        if (await s.Faults.Apply(context, s.Faults.Take(operation, id, job?.Directives), id) is { } faulted)
        {
            return (faulted, job);
        }

        return job is null
            ? (FalErrors.Detail(context, StatusCodes.Status404NotFound, $"Request {id} not found"), null)
            : (null, job);
    }

    // Status, result and cancel use owner/app only, as fal's do.
    private static Job? Lookup(string owner, string app, string id, EmulatorServices s) =>
        s.Scheduler.Find(id) is { } job && job.App == $"{owner}/{app}" ? job : null;

    private static StatusResponse Status(Job job, bool logs, JobScheduler scheduler)
    {
        var phase = job.Phase;
        return phase switch
        {
            JobPhase.Queued => new StatusResponse("IN_QUEUE", job.Id, job.ResponseUrl, job.StatusUrl, job.CancelUrl,
                QueuePosition: scheduler.QueuePosition(job) ?? 0),
            JobPhase.Running => new StatusResponse("IN_PROGRESS", job.Id, job.ResponseUrl, job.StatusUrl, job.CancelUrl,
                Logs: logs ? job.Logs : null),
            _ => new StatusResponse("COMPLETED", job.Id, job.ResponseUrl, job.StatusUrl, job.CancelUrl,
                Logs: logs ? job.Logs : null,
                Metrics: new StatusMetrics(job.StartedAt is { } started && job.CompletedAt is { } done ? (done - started).TotalSeconds : 0),
                Error: job.Outcome?.Error,
                ErrorType: job.Outcome?.ErrorType),
        };
    }

    private static TimeSpan? StartTimeout(HttpContext context)
    {
        var header = context.Request.Headers["X-Fal-Request-Start-Timeout"].FirstOrDefault()
            ?? context.Request.Headers["X-Fal-Request-Timeout"].FirstOrDefault();
        return double.TryParse(header, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds > 0
            ? TimeSpan.FromSeconds(seconds)
            : null;
    }

    private static bool WantsLogs(HttpContext context) =>
        context.Request.Query["logs"].ToString() is "1" or "true" or "True";

    /// <summary>What a submit and a run check first, as fal does: the key, then a known app; then the body and its prompt directives.</summary>
    private static async Task<(IResult? Refusal, JsonElement? Body, PromptDirectives Directives)> AcceptCallAsync(
        HttpContext context, string endpoint, EmulatorServices s)
    {
        if (s.Auth.Check(context) is { } unauthorized)
        {
            return (unauthorized, null, PromptDirectives.Parse(null));
        }

        if (!InputValidator.IsKnownEndpoint(endpoint))
        {
            return (FalErrors.Detail(context, StatusCodes.Status404NotFound, $"Application '{endpoint}' not found"), null, PromptDirectives.Parse(null));
        }

        var body = await ReadJson(context);
        return (null, body, PromptDirectives.Parse(InputValidator.PromptOf(body)));
    }

    private static async Task<JsonElement?> ReadJson(HttpContext context)
    {
        try
        {
            using var document = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The root the caller reached us on: answers carry URLs on the same host.</summary>
    internal static string Root(HttpContext context) =>
        $"{context.Request.Scheme}://{context.Request.Host}{context.Request.PathBase}";
}

/// <summary>The services every fal route needs, resolved once per request.</summary>
internal sealed record EmulatorServices(
    FalEmulatorOptions Options,
    FalEmulatorState State,
    FalAuth Auth,
    FaultInjector Faults,
    JobScheduler Scheduler,
    FileStore Files,
    SigningKeys Keys,
    TimeProvider Time)
{
    public static EmulatorServices From(IServiceProvider services) => new(
        services.GetRequiredService<FalEmulatorOptions>(),
        services.GetRequiredService<FalEmulatorState>(),
        services.GetRequiredService<FalAuth>(),
        services.GetRequiredService<FaultInjector>(),
        services.GetRequiredService<JobScheduler>(),
        services.GetRequiredService<FileStore>(),
        services.GetRequiredService<SigningKeys>(),
        services.GetRequiredService<TimeProvider>());
}

/// <summary>A stored JSON body replayed with its own status code, as fal replays the model's answer.</summary>
internal sealed class RawJsonResult(int statusCode, byte[] body) : IResult
{
    public async Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.StatusCode = statusCode;
        httpContext.Response.ContentType = "application/json";
        httpContext.Response.ContentLength = body.Length;
        await httpContext.Response.Body.WriteAsync(body, httpContext.RequestAborted);
    }
}
