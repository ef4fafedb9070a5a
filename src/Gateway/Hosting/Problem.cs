using System.Text.Json.Serialization;

namespace Gateway.Hosting;

/// <summary>
/// Every error the gateway answers: <c>application/problem+json</c> (RFC 9457). <c>type</c> is a stable URN
/// (<c>urn:mai-image-gateway:problem:…</c>) to branch on; <c>trace_id</c> finds the request in the logs.
/// </summary>
/// <remarks>The document's one problem schema; problems are written by ASP.NET Core's problem details service.</remarks>
/// <param name="Type">What kind of problem it is, e.g. urn:mai-image-gateway:problem:validation.</param>
/// <param name="Title">A short, human-readable summary of the kind of problem.</param>
/// <param name="Status">The HTTP status code of the answer.</param>
/// <param name="Detail">What happened to this request, and what to do about it.</param>
/// <param name="TraceId">The W3C trace id of the request: give it when asking about the error.</param>
/// <param name="Errors">Field name (as sent, e.g. num_images, image_urls[0], Idempotency-Key) to what is wrong with it: bad input, and fal's own field errors.</param>
/// <param name="Limits">The client limits that refused a submit (429).</param>
/// <param name="RetryAfterSeconds">When a refused submit may succeed (429), as in the Retry-After header.</param>
/// <param name="FalStatus">The status code fal answered, when the problem comes from fal.</param>
/// <param name="FalErrorType">fal's error type (e.g. request_timeout), when fal gave one.</param>
[ApiExample("""
    {
      "type": "urn:mai-image-gateway:problem:validation",
      "title": "The request is not valid",
      "status": 400,
      "detail": "One or more fields are invalid; see errors.",
      "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
      "errors": { "num_images": ["num_images must be from 1 to 4."] }
    }
    """)]
public sealed record Problem(
    string Type,
    string Title,
    int Status,
    string Detail,
    string TraceId,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyDictionary<string, string[]>? Errors = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    [property: ApiValues("requests_per_minute", "images_per_day", "daily_budget_usd", "max_concurrent", "per_user.requests_per_minute", "per_user.images_per_day")]
    IReadOnlyList<string>? Limits = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? RetryAfterSeconds = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? FalStatus = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? FalErrorType = null);
