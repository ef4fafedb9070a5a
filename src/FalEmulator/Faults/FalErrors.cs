using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http;

namespace FalEmulator;

/// <summary>fal's error answers: model errors carry a detail list, infrastructure errors a detail string and an error type.</summary>
internal static class FalErrors
{
    public const string ContentPolicyMessage =
        "The content could not be processed because it contained material flagged by a content checker.";

    public static IResult Json<T>(HttpContext context, int status, T value, JsonTypeInfo<T> typeInfo, string? requestId = null)
    {
        if (requestId is not null)
        {
            context.Response.Headers["x-fal-request-id"] = requestId;
        }

        return TypedResults.Json(value, typeInfo, statusCode: status);
    }

    public static IResult Detail(HttpContext context, int status, string detail, string? errorType = null, string? requestId = null)
    {
        if (errorType is not null)
        {
            context.Response.Headers["X-Fal-Error-Type"] = errorType;
        }

        return Json(context, status, new ErrorResponse(detail, errorType), EmulatorJson.Default.ErrorResponse, requestId);
    }

    public static IResult Validation(HttpContext context, IReadOnlyList<ValidationIssue> issues, string? requestId = null) =>
        Json(context, StatusCodes.Status422UnprocessableEntity, new ValidationErrorResponse(issues),
            EmulatorJson.Default.ValidationErrorResponse, requestId);

    public static ValidationIssue ContentPolicyIssue() =>
        new(["body", "prompt"], ContentPolicyMessage, "content_policy_violation", [],
            "https://docs.fal.ai/errors#content_policy_violation");

    public static ValidationIssue FaultValidationIssue() =>
        new(["body", "prompt"], "Value error, the model rejected this prompt", "value_error", new JsonObject { ["error"] = "injected fault" });

    /// <summary>The answer for a call fault kind (slow and drop are handled by <see cref="FaultInjector"/>).</summary>
    public static IResult ForKind(HttpContext context, string kind, string? requestId)
    {
        switch (kind)
        {
            case "401":
                return Detail(context, 401, "Invalid key", requestId: requestId);
            case "402":
                return Detail(context, 402, "Exhausted balance", "exhausted_balance", requestId);
            case "422":
                return Validation(context, [FaultValidationIssue()], requestId);
            case FaultKinds.ContentPolicy:
                return Validation(context, [ContentPolicyIssue()], requestId);
            case "429":
                context.Response.Headers.RetryAfter = "2";
                return Detail(context, 429, "Too many requests", "rate_limited", requestId);
            case "500":
                return Detail(context, 500, "Internal server error", "internal_error", requestId);
            case "502":
                return Detail(context, 502, "Bad gateway: the runner closed the connection", "runner_connection_error", requestId);
            case "503":
                return Detail(context, 503, "Service unavailable: no runner could be scheduled", "runner_scheduling_failure", requestId);
            case "504":
                return Detail(context, 504, "Request timed out", "request_timeout", requestId);
            default:
                throw new InvalidOperationException($"No answer for fault kind '{kind}'.");
        }
    }
}

/// <summary>Applies the fault a setting or a prompt asks for on one call.</summary>
internal sealed class FaultInjector(FalEmulatorState state, FalEmulatorOptions options, TimeProvider time)
{
    /// <summary>The next fault kind for this call: a setting's rule first, then the job's prompt.</summary>
    public string? Take(FalOperation operation, string? requestId, PromptDirectives? directives) =>
        state.TakeFault(operation, requestId) ?? directives?.Take(operation);

    /// <summary>Null when the call should go on (no fault, or after a "slow" stall); otherwise the answer to give.</summary>
    public async Task<IResult?> Apply(HttpContext context, string? kind, string? requestId)
    {
        switch (kind)
        {
            case null:
                return null;
            case FaultKinds.Slow:
                await Task.Delay(options.SlowDelay, time, context.RequestAborted);
                return null;
            case FaultKinds.Drop:
                context.Abort();
                return Results.Empty;
            default:
                return FalErrors.ForKind(context, kind, requestId);
        }
    }
}
