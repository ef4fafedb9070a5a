using System.Buffers;
using System.Globalization;
using Gateway.Upstream;
using Microsoft.Extensions.Primitives;

namespace Gateway.Proxy;

/// <summary>What a proxied call may do: the fal operations the gateway forwards, and nothing else.</summary>
internal enum FalProxyOperation
{
    Submit,
    Status,
    StatusStream,
    Result,
    Cancel,
    StorageInitiate,
    StorageInitiateMultipart,
    StorageCompleteMultipart,
    Run,
}

/// <summary>The fal host a target names; each maps onto one configured base URL.</summary>
internal enum FalHost
{
    Queue,
    Rest,
    Run,
}

/// <summary>An allowed target: the operation, where it goes, and the query the gateway rebuilds (never the caller's raw query).</summary>
internal sealed record FalProxyTarget(
    FalProxyOperation Operation,
    FalHost Host,
    string Path,
    string? EndpointId,
    string? RequestId,
    IReadOnlyList<KeyValuePair<string, string>> Query)
{
    public const string HeaderName = "x-fal-target-url";

    public bool IsSubmit => Operation is FalProxyOperation.Submit or FalProxyOperation.Run;

    /// <summary>The base URL the host maps to (which may carry a path prefix, as the stand-in's <c>/rest</c> does).</summary>
    public string BaseUrl(FalOptions fal) => (Host switch
    {
        FalHost.Queue => fal.QueueBaseUrl,
        FalHost.Rest => fal.RestBaseUrl,
        _ => fal.RunBaseUrl,
    }).TrimEnd('/');

    /// <summary>The upstream URL, with the query rebuilt from the parsed (allowed) parameters plus <paramref name="extra"/>.</summary>
    public Uri Destination(FalOptions fal, IEnumerable<KeyValuePair<string, string>>? extra = null) => new(BaseUrl(fal) + PathAndQuery(extra));

    /// <summary>The upstream path with the query rebuilt from the parsed (allowed) parameters plus <paramref name="extra"/>.</summary>
    public string PathAndQuery(IEnumerable<KeyValuePair<string, string>>? extra = null)
    {
        if (Query.Count == 0 && extra is null)
        {
            return Path;
        }

        var query = string.Join('&', Query.Concat(extra ?? []).Select(p => Uri.EscapeDataString(p.Key) + "=" + Uri.EscapeDataString(p.Value)));
        return query.Length > 0 ? Path + "?" + query : Path;
    }
}

/// <summary>Why a target was refused; <see cref="Status"/> is what fal's own proxy answers.</summary>
internal sealed record FalProxyRefusal(int Status, string Message, string Detail);

/// <summary>
/// Parses <c>x-fal-target-url</c> strictly and matches it against the allowlist: https only; exactly the hosts
/// queue.fal.run, rest.fal.ai and fal.run (no userinfo, port, IP literal or look-alike); a path of plain
/// characters (no percent-encoding, backslash, dot segments or empty segments); only the configured models and
/// their request URLs; and only the query parameters each operation takes.
/// </summary>
internal static class FalProxyTargetParser
{
    private const string QueueHost = "queue.fal.run";
    private const string RestHost = "rest.fal.ai";
    private const string RunHost = "fal.run";
    private const int MaxLength = 4096;

    /// <summary>Printable ASCII that still has no place in a fal URL: backslashes, fragments, list separators, quotes, brackets.</summary>
    private static readonly SearchValues<char> Forbidden = SearchValues.Create("\\#,\"<>^`{|}");

    /// <summary>The characters of a fal path: no percent-encoding.</summary>
    private static readonly SearchValues<char> PathCharacters =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-_.~");

    public static (FalProxyTarget? Target, FalProxyRefusal? Refusal) Parse(
        StringValues header, string method, FalOptions fal, FalProxyOptions proxy)
    {
        if (header.Count == 0 || string.IsNullOrWhiteSpace(header[0]))
        {
            return (null, proxy.LegacyStatusCodes
                ? new FalProxyRefusal(StatusCodes.Status400BadRequest, "Missing the x-fal-target-url header", "The x-fal-target-url header is required.")
                : new FalProxyRefusal(StatusCodes.Status400BadRequest, "Invalid request", "The x-fal-target-url header is required."));
        }

        if (header.Count > 1)
        {
            return Refuse(proxy, "Exactly one x-fal-target-url header value is allowed.");
        }

        var raw = header[0]!;
        if (raw.Length > MaxLength)
        {
            return Refuse(proxy, "The target URL is too long.");
        }

        // Control characters, spaces, non-ASCII, backslashes, fragments and list separators have no place in a fal URL.
        if (raw.AsSpan().IndexOfAnyExceptInRange('!', '~') >= 0 || raw.AsSpan().IndexOfAny(Forbidden) >= 0)
        {
            return Refuse(proxy, "The target URL contains characters that are not allowed.");
        }

        if (!raw.StartsWith("https://", StringComparison.Ordinal))
        {
            return Refuse(proxy, "The target URL must be an https URL.");
        }

        var rest = raw["https://".Length..];
        var authorityEnd = rest.IndexOfAny(['/', '?']);
        var authority = authorityEnd < 0 ? rest : rest[..authorityEnd];
        var pathAndQuery = authorityEnd < 0 ? "/" : rest[authorityEnd..];

        // Compared as a whole, so userinfo (a@host), ports (host:443), IP literals and look-alikes never match.
        FalHost host;
        switch (authority.ToLowerInvariant())
        {
            case QueueHost:
                host = FalHost.Queue;
                break;
            case RestHost:
                host = FalHost.Rest;
                break;
            case RunHost:
                host = FalHost.Run;
                break;
            default:
                return Refuse(proxy, "The target host is not allowed: only queue.fal.run, rest.fal.ai and fal.run (without port or credentials).");
        }

        if (!Uri.TryCreate(raw, UriKind.Absolute, out _))
        {
            return Refuse(proxy, "The target URL is not a valid URL.");
        }

        var queryStart = pathAndQuery.IndexOf('?', StringComparison.Ordinal);
        var path = queryStart < 0 ? pathAndQuery : pathAndQuery[..queryStart];
        var rawQuery = queryStart < 0 ? "" : pathAndQuery[(queryStart + 1)..];
        if (path.AsSpan().IndexOfAnyExcept(PathCharacters) >= 0)
        {
            return Refuse(proxy, "The target path contains characters that are not allowed (no percent-encoding).");
        }

        var segments = path.Split('/')[1..];
        if (segments.Any(s => s is "" or "." or ".."))
        {
            return Refuse(proxy, "The target path has empty or dot segments.");
        }

        if (ParseQuery(rawQuery) is not { } query)
        {
            return Refuse(proxy, "The target query string is malformed or repeats a parameter.");
        }

        var target = Match(host, method.ToUpperInvariant(), path, segments, fal, proxy);
        if (target is null)
        {
            return Refuse(proxy, $"{method.ToUpperInvariant()} {authority.ToLowerInvariant()}{path} is not an allowed fal endpoint for this gateway.");
        }

        return CheckQuery(target, query) is { } problem
            ? Refuse(proxy, problem)
            : (target with { Query = FilterQuery(target, query) }, null);
    }

    private static FalProxyTarget? Match(FalHost host, string method, string path, string[] segments, FalOptions fal, FalProxyOptions proxy)
    {
        var endpoint = path.TrimStart('/');
        var isModel = endpoint == fal.Model || endpoint == fal.EditModel;
        switch (host)
        {
            case FalHost.Queue when method == "POST" && isModel:
                return new FalProxyTarget(FalProxyOperation.Submit, host, path, endpoint, null, []);
            case FalHost.Queue:
                var appId = fal.AppId; // owner/app
                if (segments.Length is < 4 or > 6 || $"{segments[0]}/{segments[1]}" != appId
                    || segments[2] != "requests" || !IsRequestId(segments[3]))
                {
                    return null;
                }

                var id = segments[3];
                var operation = (method, segments.Length, segments.ElementAtOrDefault(4), segments.ElementAtOrDefault(5)) switch
                {
                    ("GET", 4, _, _) => FalProxyOperation.Result,
                    ("GET", 5, "status", _) => FalProxyOperation.Status,
                    ("GET", 6, "status", "stream") => FalProxyOperation.StatusStream,
                    ("PUT", 5, "cancel", _) => (FalProxyOperation?)FalProxyOperation.Cancel,
                    _ => null,
                };
                return operation is { } op ? new FalProxyTarget(op, host, path, appId, id, []) : null;
            case FalHost.Rest when method == "POST":
                var storage = path switch
                {
                    "/storage/upload/initiate" => FalProxyOperation.StorageInitiate,
                    "/storage/upload/initiate-multipart" => FalProxyOperation.StorageInitiateMultipart,
                    "/storage/upload/complete-multipart" => (FalProxyOperation?)FalProxyOperation.StorageCompleteMultipart,
                    _ => null,
                };
                return storage is { } s ? new FalProxyTarget(s, host, path, null, null, []) : null;
            case FalHost.Run when proxy.AllowRun && method == "POST" && isModel:
                return new FalProxyTarget(FalProxyOperation.Run, host, path, endpoint, null, []);
            default:
                return null;
        }
    }

    /// <summary>Null when every parameter is one the operation takes, with a value it accepts.</summary>
    private static string? CheckQuery(FalProxyTarget target, Dictionary<string, string> query)
    {
        foreach (var (key, value) in query)
        {
            var ok = (target.Operation, key) switch
            {
                (FalProxyOperation.Submit, "fal_webhook") => true, // replaced by the gateway's own below
                (FalProxyOperation.Submit, "fal_max_queue_length") => int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out _),
                (FalProxyOperation.Status or FalProxyOperation.StatusStream, "logs") => value is "0" or "1" or "true" or "false",
                (FalProxyOperation.StorageInitiate or FalProxyOperation.StorageInitiateMultipart or FalProxyOperation.StorageCompleteMultipart, "storage_type") =>
                    value == "fal-cdn-v3",
                _ => false,
            };
            if (!ok)
            {
                return $"The query parameter '{key}' is not allowed on this target.";
            }
        }

        var isStorage = target.Operation is FalProxyOperation.StorageInitiate or FalProxyOperation.StorageInitiateMultipart
            or FalProxyOperation.StorageCompleteMultipart;
        return isStorage && !query.ContainsKey("storage_type") ? "Storage calls must ask for ?storage_type=fal-cdn-v3." : null;
    }

    private static List<KeyValuePair<string, string>> FilterQuery(FalProxyTarget target, Dictionary<string, string> query) =>
        [.. query.Where(p => !(target.Operation == FalProxyOperation.Submit && p.Key == "fal_webhook"))];

    private static Dictionary<string, string>? ParseQuery(string rawQuery)
    {
        var query = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in rawQuery.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            var key = Unescape(equals < 0 ? pair : pair[..equals]);
            var value = Unescape(equals < 0 ? "" : pair[(equals + 1)..]);
            if (key is null || value is null || !query.TryAdd(key, value))
            {
                return null;
            }
        }

        return query;
    }

    private static string? Unescape(string value)
    {
        try
        {
            return Uri.UnescapeDataString(value.Replace('+', ' '));
        }
        catch (UriFormatException)
        {
            return null;
        }
    }

    private static bool IsRequestId(string value) =>
        value.Length is > 0 and <= 128 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    private static (FalProxyTarget?, FalProxyRefusal?) Refuse(FalProxyOptions proxy, string detail) =>
        (null, proxy.LegacyStatusCodes
            ? new FalProxyRefusal(StatusCodes.Status412PreconditionFailed, "Invalid x-fal-target-url header", detail)
            : new FalProxyRefusal(StatusCodes.Status400BadRequest, "Invalid request", detail));
}
