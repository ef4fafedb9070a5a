using Microsoft.Extensions.Http.Logging;

namespace Gateway.Hosting;

/// <summary>
/// The only logger of every <c>IHttpClientFactory</c> client. The factory's default logger writes each request
/// header as a structured property holding its raw value (only the rendered text says <c>*</c>, whatever
/// <c>RedactLoggedHeaders</c> is given), so at Trace the FAL key reached every sink. This one is never handed a
/// header: it logs the method, the URL without user info or query, the status and the time.
/// </summary>
internal sealed partial class HeaderFreeHttpClientLogger(ILoggerFactory loggers) : IHttpClientLogger
{
    /// <summary>The default logger's category root, so the levels already configured for it still apply.</summary>
    public const string CategoryName = "System.Net.Http.HttpClient";

    private readonly ILogger _logger = loggers.CreateLogger(CategoryName);

    // Each fal call passes through here: the URL is described only when the line will be written.
    public object? LogRequestStart(HttpRequestMessage request)
    {
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            LogSending(_logger, request.Method.Method, Describe(request.RequestUri));
        }

        return null;
    }

    public void LogRequestStop(object? context, HttpRequestMessage request, HttpResponseMessage response, TimeSpan elapsed)
    {
        if (_logger.IsEnabled(LogLevel.Information))
        {
            LogReceived(_logger, (int)response.StatusCode, request.Method.Method, Describe(request.RequestUri), elapsed.TotalMilliseconds);
        }
    }

    public void LogRequestFailed(object? context, HttpRequestMessage request, HttpResponseMessage? response, Exception exception, TimeSpan elapsed)
    {
        if (_logger.IsEnabled(LogLevel.Information))
        {
            LogFailed(_logger, request.Method.Method, Describe(request.RequestUri), elapsed.TotalMilliseconds, exception);
        }
    }

    private static string Describe(Uri? uri) =>
        uri is not { IsAbsoluteUri: true } ? "(relative)"
        : uri.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped) + (uri.Query.Length > 1 ? "?*" : "");

    [LoggerMessage(EventId = 100, Level = LogLevel.Debug, Message = "Sending HTTP request {HttpMethod} {Uri}")]
    private static partial void LogSending(ILogger logger, string httpMethod, string uri);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Received HTTP response {StatusCode} to {HttpMethod} {Uri} after {ElapsedMilliseconds:F1} ms")]
    private static partial void LogReceived(ILogger logger, int statusCode, string httpMethod, string uri, double elapsedMilliseconds);

    [LoggerMessage(EventId = 104, Level = LogLevel.Information, Message = "HTTP request {HttpMethod} {Uri} failed after {ElapsedMilliseconds:F1} ms")]
    private static partial void LogFailed(ILogger logger, string httpMethod, string uri, double elapsedMilliseconds, Exception exception);
}
