using System.Text.Json;
using System.Text.Json.Nodes;

namespace FalEmulator;

/// <summary>Validates a model input the way fal's pydantic models do: every problem reported, extra fields ignored.</summary>
internal static class InputValidator
{
    public const string TextToImage = "microsoft/mai-image-2.5";
    public const string Edit = "microsoft/mai-image-2.5/edit";

    public static readonly IReadOnlyList<string> GenerationRatios =
        ["auto", "21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16"];

    public static readonly IReadOnlyList<string> EditRatios = ["auto", "1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3"];

    public static readonly IReadOnlyList<string> Formats = ["jpeg", "png", "webp"];

    /// <summary>fal's edit schema: "Provide one http(s) or data: URL"; two are refused as too long.</summary>
    public const int MaxEditImages = 1;

    public static bool IsKnownEndpoint(string endpoint) => endpoint is TextToImage or Edit;

    /// <summary>The prompt as sent, even when other fields are invalid (it carries fault directives).</summary>
    public static string? PromptOf(JsonElement? body) =>
        body is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty("prompt", out var p) && p.ValueKind == JsonValueKind.String
            ? p.GetString()
            : null;

    public static (GenerationInput? Input, List<ValidationIssue> Issues) Validate(JsonElement? parsed, bool isEdit)
    {
        var issues = new List<ValidationIssue>();
        if (parsed is not { ValueKind: JsonValueKind.Object } body)
        {
            issues.Add(Issue([], "Input should be a valid dictionary or object to extract fields from", "model_attributes_type"));
            return (null, issues);
        }

        var prompt = "";
        if (!body.TryGetProperty("prompt", out var promptElement))
        {
            issues.Add(Issue(["prompt"], "Field required", "missing"));
        }
        else if (promptElement.ValueKind != JsonValueKind.String)
        {
            issues.Add(Issue(["prompt"], "Input should be a valid string", "string_type"));
        }
        else if (string.IsNullOrWhiteSpace(prompt = promptElement.GetString()!))
        {
            issues.Add(Issue(["prompt"], "String should have at least 1 character", "string_too_short", new JsonObject { ["min_length"] = 1 }));
        }

        var numImages = 1;
        if (body.TryGetProperty("num_images", out var n) && n.ValueKind != JsonValueKind.Null)
        {
            if (n.ValueKind != JsonValueKind.Number || !n.TryGetInt32(out numImages))
            {
                issues.Add(Issue(["num_images"], "Input should be a valid integer", "int_type"));
            }
            else if (numImages < 1)
            {
                issues.Add(Issue(["num_images"], "Input should be greater than or equal to 1", "greater_than_equal", new JsonObject { ["ge"] = 1 }));
            }
            else if (numImages > 4)
            {
                issues.Add(Issue(["num_images"], "Input should be less than or equal to 4", "less_than_equal", new JsonObject { ["le"] = 4 }));
            }
        }

        var aspectRatio = OneOf(body, "aspect_ratio", isEdit ? EditRatios : GenerationRatios, "auto", issues);
        var outputFormat = OneOf(body, "output_format", Formats, "png", issues);

        var syncMode = false;
        if (body.TryGetProperty("sync_mode", out var sync) && sync.ValueKind != JsonValueKind.Null)
        {
            if (sync.ValueKind is JsonValueKind.True or JsonValueKind.False)
            {
                syncMode = sync.GetBoolean();
            }
            else
            {
                issues.Add(Issue(["sync_mode"], "Input should be a valid boolean", "bool_type"));
            }
        }

        var imageUrls = new List<string>();
        if (isEdit)
        {
            if (!body.TryGetProperty("image_urls", out var urls) || urls.ValueKind == JsonValueKind.Null)
            {
                issues.Add(Issue(["image_urls"], "Field required", "missing"));
            }
            else if (urls.ValueKind != JsonValueKind.Array)
            {
                issues.Add(Issue(["image_urls"], "Input should be a valid list", "list_type"));
            }
            else
            {
                var index = 0;
                foreach (var url in urls.EnumerateArray())
                {
                    if (url.ValueKind == JsonValueKind.String && IsFileUrl(url.GetString()!))
                    {
                        imageUrls.Add(url.GetString()!);
                    }
                    else
                    {
                        issues.Add(Issue(["image_urls", index.ToString(System.Globalization.CultureInfo.InvariantCulture)],
                            "Input should be a valid URL", "url_parsing"));
                    }

                    index++;
                }

                if (index == 0)
                {
                    issues.Add(Issue(["image_urls"], "List should have at least 1 item after validation, not 0", "too_short",
                        new JsonObject { ["field_type"] = "List", ["min_length"] = 1, ["actual_length"] = 0 }));
                }
                else if (index > MaxEditImages)
                {
                    issues.Add(Issue(["image_urls"], $"List should have at most {MaxEditImages} item after validation, not {index}", "too_long",
                        new JsonObject { ["field_type"] = "List", ["max_length"] = MaxEditImages, ["actual_length"] = index }));
                }
            }
        }

        return issues.Count > 0
            ? (null, issues)
            : (new GenerationInput(prompt, numImages, aspectRatio, outputFormat, syncMode, imageUrls, isEdit), issues);
    }

    private static string OneOf(JsonElement body, string field, IReadOnlyList<string> allowed, string fallback, List<ValidationIssue> issues)
    {
        if (!body.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return fallback;
        }

        if (value.ValueKind == JsonValueKind.String && allowed.Contains(value.GetString()!))
        {
            return value.GetString()!;
        }

        var expected = string.Join(", ", allowed.SkipLast(1).Select(a => $"'{a}'")) + $" or '{allowed[^1]}'";
        issues.Add(Issue([field], $"Input should be {expected}", "literal_error", new JsonObject { ["expected"] = expected }));
        return fallback;
    }

    private static bool IsFileUrl(string url) =>
        url.StartsWith("data:", StringComparison.OrdinalIgnoreCase)
        || (Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https");

    private static ValidationIssue Issue(string[] path, string msg, string type, JsonObject? ctx = null) =>
        new(["body", .. path], msg, type, ctx);
}
