using System.Text.Json;

namespace Gateway.Hosting;

internal enum JsonBodyErrorKind
{
    /// <summary>A value of the wrong JSON type, e.g. <c>"num_images":"4"</c>.</summary>
    WrongType,

    /// <summary>A property that appears twice (the serializer is set to refuse, not to let the last one win).</summary>
    Duplicate,

    /// <summary>Not JSON at all.</summary>
    Malformed,

    /// <summary>No body where one is required.</summary>
    Missing,
}

/// <summary>
/// A request body the serializer could not read, by field: what /v1 turns into a 400 problem and the proxy into
/// fal's 422, so the two name the same field.
/// </summary>
internal sealed record JsonBodyError(JsonBodyErrorKind Kind, string Field, string Message)
{
    /// <summary>
    /// The body error behind a failed binding of a JSON body, or null when the failure is not the body's: the serializer's
    /// error, or no body at all (the framework says so only in its message).
    /// </summary>
    public static JsonBodyError? From(BadHttpRequestException exception) => exception switch
    {
        { InnerException: JsonException json } => From(json),
        _ when exception.Message.Contains("body", StringComparison.OrdinalIgnoreCase) =>
            new(JsonBodyErrorKind.Missing, "body", "A JSON object body is required."),
        _ => null,
    };

    public static JsonBodyError From(JsonException exception)
    {
        // System.Text.Json has no error codes; its messages are stable (and English: InvariantGlobalization).
        var field = FieldOf(exception.Path);
        if (exception.Message.StartsWith("The JSON value could not be converted", StringComparison.Ordinal))
        {
            return new(JsonBodyErrorKind.WrongType, field, $"{field} has a value of the wrong type.");
        }

        if (exception.Message.StartsWith("Duplicate property", StringComparison.Ordinal))
        {
            return new(JsonBodyErrorKind.Duplicate, field, $"{field} appears more than once; send each field once.");
        }

        return new(JsonBodyErrorKind.Malformed, "body",
            $"The request body is not valid JSON (line {exception.LineNumber + 1}, byte {exception.BytePositionInLine + 1}).");
    }

    private static string FieldOf(string? path) =>
        string.IsNullOrEmpty(path) || path == "$" ? "body" : path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');
}
