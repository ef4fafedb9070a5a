using System.Text.Json;

namespace Gateway.Upstream;

/// <summary>Reads fal's error answers (a call's status and body, a webhook's error, a failed job's result) into a <see cref="FalFailure"/>.</summary>
internal static class FalErrorParser
{
    /// <summary>What a failed call to fal means for the gateway, by fal's status code.</summary>
    internal static FalFailureKind KindFor(int statusCode, string operation, string? errorType) => statusCode switch
    {
        401 or 403 => FalFailureKind.Misconfigured,
        402 => FalFailureKind.AccountUnavailable,
        429 => FalFailureKind.RateLimited,
        504 => FalFailureKind.Timeout,
        400 or 422 when operation == "submit" => FalFailureKind.Rejected,
        _ when errorType is "locked" or "account_locked" or "user_locked" => FalFailureKind.AccountUnavailable,
        _ => FalFailureKind.BadGateway,
    };

    /// <summary>A job fal's webhook reported as ERROR: its payload (fal's error body) and its "Invalid status code: 422" text.</summary>
    internal static FalFailure FromWebhook(ReadOnlyMemory<byte>? payload, string? error, string? payloadError)
    {
        var (detail, errorType, fieldErrors) = payload is { } body ? Parse(body.ToArray()) : ("", null, null);
        return new FalFailure(FalFailureKind.JobFailed, StatusCodeIn(error),
            string.IsNullOrWhiteSpace(detail) ? payloadError ?? error ?? "fal reported an error." : detail, errorType, fieldErrors);
    }

    /// <summary>A job whose result call answered an error, or whose status carried one.</summary>
    internal static FalFailure FromResult(FalResultBody body, FalStatus status)
    {
        var (detail, errorType, fieldErrors) = Parse(body.Body);
        return new FalFailure(
            FalFailureKind.JobFailed,
            body.StatusCode is >= 200 and < 300 ? null : body.StatusCode,
            string.IsNullOrWhiteSpace(detail) ? status.Error ?? $"fal answered {body.StatusCode}." : detail,
            status.ErrorType ?? errorType,
            fieldErrors);
    }

    /// <summary>fal's webhook says "Invalid status code: 422".</summary>
    internal static int? StatusCodeIn(string? error)
    {
        var digits = new string((error ?? "").Reverse().TakeWhile(char.IsDigit).Reverse().ToArray());
        return int.TryParse(digits, System.Globalization.CultureInfo.InvariantCulture, out var code) && code is >= 100 and < 600 ? code : null;
    }

    /// <summary>Reads fal's error body: <c>{"detail": "…" | [{loc,msg,type}], "error_type": "…"}</c>, or anything else.</summary>
    internal static async Task<(string Detail, string? ErrorType, IReadOnlyList<FalFieldError>? FieldErrors)> ReadAsync(
        HttpResponseMessage response, CancellationToken cancellationToken)
    {
        byte[] body;
        try
        {
            body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        }
        catch (HttpRequestException)
        {
            return ("", null, null);
        }

        return Parse(body);
    }

    internal static (string Detail, string? ErrorType, IReadOnlyList<FalFieldError>? FieldErrors) Parse(byte[] body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return ("", null, null);
            }

            var errorType = root.TryGetProperty("error_type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            if (!root.TryGetProperty("detail", out var detail))
            {
                return ("", errorType, null);
            }

            if (detail.ValueKind == JsonValueKind.Array)
            {
                var errors = detail.Deserialize(FalJsonContext.Default.ListFalFieldError) ?? [];
                var text = string.Join("; ", errors.Select(e => $"{e.Field}: {e.Msg}"));
                return (text, errorType ?? errors.FirstOrDefault()?.Type, errors);
            }

            return (detail.ValueKind == JsonValueKind.String ? detail.GetString() ?? "" : detail.GetRawText(), errorType, null);
        }
        catch (JsonException)
        {
            return ("", null, null);
        }
    }
}
