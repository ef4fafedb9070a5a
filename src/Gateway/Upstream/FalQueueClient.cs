using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Gateway.Hosting;
using Microsoft.Extensions.Options;
using Polly.CircuitBreaker;
using Polly.Timeout;

namespace Gateway.Upstream;

/// <summary>
/// The one typed client for fal's queue API. Reads go through the standard resilience handler (retried
/// with backoff); a submit is never retried once it may have reached fal, because fal would bill it twice.
/// </summary>
internal sealed class FalQueueClient(
    HttpClient http, IOptions<FalOptions> options, IOptions<FalSubmitHeaders> submitHeaders, Hosting.GatewayMetrics metrics, TimeProvider time, ILogger<FalQueueClient> logger)
{
    private readonly FalOptions _options = options.Value;
    private readonly FalSubmitHeaders _submitHeaders = submitHeaders.Value;

    public async Task<FalSubmitResponse> SubmitAsync(
        string endpointId, byte[] inputJson, string? webhookUrl, CancellationToken cancellationToken)
    {
        var url = $"{_options.QueueBaseUrl.TrimEnd('/')}/{endpointId}";
        if (webhookUrl is not null)
        {
            url += "?fal_webhook=" + Uri.EscapeDataString(webhookUrl);
        }

        using var request = NewRequest(HttpMethod.Post, url);
        foreach (var (name, value) in _submitHeaders.Headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        request.Content = new ByteArrayContent(inputJson);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await SendAsync(request, "submit", cancellationToken);
        await EnsureSuccessAsync(response, "submit", cancellationToken);
        var submitted = await ReadJsonAsync(response, FalJsonContext.Default.FalSubmitResponse, "submit", cancellationToken);
        if (string.IsNullOrWhiteSpace(submitted.RequestId))
        {
            throw new FalUpstreamException(new FalFailure(FalFailureKind.BadGateway, (int)response.StatusCode, "fal's submit answer had no request_id."));
        }

        return submitted;
    }

    public async Task<FalStatus> GetStatusAsync(string statusUrl, bool logs, CancellationToken cancellationToken)
    {
        using var request = NewRequest(HttpMethod.Get, logs ? statusUrl + "?logs=1" : statusUrl);
        using var response = await SendAsync(request, "status", cancellationToken);
        await EnsureSuccessAsync(response, "status", cancellationToken);
        return await ReadJsonAsync(response, FalJsonContext.Default.FalStatus, "status", cancellationToken);
    }

    /// <summary>The result call: the model's output, or the model's own error code and body for a failed job.</summary>
    public async Task<FalResultBody> GetResultAsync(string responseUrl, CancellationToken cancellationToken)
    {
        using var request = NewRequest(HttpMethod.Get, responseUrl);
        using var response = await SendAsync(request, "result", cancellationToken);
        var code = (int)response.StatusCode;
        var aboutTheJob = code is >= 200 and < 300 or 499 || code is >= 405 and < 500 and not (408 or 429);
        if (!aboutTheJob)
        {
            // Not an answer about the job: the key, the account, throttling, or fal itself.
            await EnsureSuccessAsync(response, "result", cancellationToken, treatAsFailure: true);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.ResultReadTimeout);
        try
        {
            var body = await response.Content.ReadAsByteArrayAsync(timeout.Token);
            return new FalResultBody(code, body);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new FalUpstreamException(new FalFailure(FalFailureKind.Timeout, code, "Reading fal's result took too long."));
        }
        catch (HttpRequestException e)
        {
            throw new FalUpstreamException(new FalFailure(FalFailureKind.BadGateway, code, "fal's result could not be read."), e);
        }
    }

    public async Task<FalCancelOutcome> CancelAsync(string cancelUrl, CancellationToken cancellationToken)
    {
        using var request = NewRequest(HttpMethod.Put, cancelUrl);
        using var response = await SendAsync(request, "cancel", cancellationToken);
        if (response.IsSuccessStatusCode)
        {
            return FalCancelOutcome.Requested;
        }

        if (response.StatusCode == HttpStatusCode.BadRequest)
        {
            return FalCancelOutcome.AlreadyCompleted;
        }

        await EnsureSuccessAsync(response, "cancel", cancellationToken);
        return FalCancelOutcome.Requested;
    }

    /// <summary>fal storage, step 1 (with the FAL key): where to PUT a file, and the URL it will then have.</summary>
    public async Task<FalUploadTarget> InitiateUploadAsync(string contentType, string fileName, CancellationToken cancellationToken)
    {
        using var request = NewRequest(HttpMethod.Post, $"{_options.RestBaseUrl.TrimEnd('/')}/storage/upload/initiate?storage_type=fal-cdn-v3");
        request.Content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(
            new FalUploadInitiate(contentType, fileName), FalJsonContext.Default.FalUploadInitiate));
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await SendAsync(request, "upload", cancellationToken);
        await EnsureSuccessAsync(response, "upload", cancellationToken);
        var target = await ReadJsonAsync(response, FalJsonContext.Default.FalUploadTarget, "upload", cancellationToken);
        if (!Uri.TryCreate(target.UploadUrl, UriKind.Absolute, out var upload) || upload.Scheme is not ("http" or "https")
            || !Uri.TryCreate(target.FileUrl, UriKind.Absolute, out var file) || file.Scheme is not ("http" or "https"))
        {
            throw new FalUpstreamException(new FalFailure(FalFailureKind.BadGateway, (int)response.StatusCode,
                "fal's upload answer had no usable upload_url and file_url."));
        }

        return target;
    }

    /// <summary>fal storage, step 2: the bytes go to the signed upload URL, streamed, without the FAL key.</summary>
    public async Task PutUploadAsync(string uploadUrl, Stream content, string contentType, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, uploadUrl) { Content = new StreamContent(content) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        using var response = await SendAsync(request, "upload", cancellationToken);
        await EnsureSuccessAsync(response, "upload", cancellationToken);
    }

    private HttpRequestMessage NewRequest(HttpMethod method, string url)
    {
        var request = new HttpRequestMessage(method, url);
        request.Headers.Authorization = new AuthenticationHeaderValue("Key", _options.EffectiveKey);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        if (RequestIdIn(url) is { } requestId)
        {
            // For the call's span: fal's answer names the job too (x-fal-request-id), but not when the call fails.
            request.Options.Set(ObservabilityExtensions.FalRequestId, requestId);
        }

        return request;
    }

    /// <summary>The job a status, result or cancel URL is about: fal's queue URLs end in <c>/requests/{id}[/status|/cancel]</c>.</summary>
    internal static string? RequestIdIn(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri))
        {
            return null;
        }

        var segments = uri.AbsolutePath.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var at = Array.LastIndexOf(segments, "requests");
        return at >= 0 && at + 1 < segments.Length ? Uri.UnescapeDataString(segments[at + 1]) : null;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, string operation, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        var outcome = "error";
        try
        {
            var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            outcome = ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return response;
        }
        catch (BrokenCircuitException e)
        {
            outcome = "circuit_open";
            throw new FalUpstreamException(new FalFailure(FalFailureKind.CircuitOpen, null,
                $"Calls to fal are paused after repeated failures ({operation}).", RetryAfter: TimeSpan.FromSeconds(5)), e);
        }
        catch (TimeoutRejectedException e)
        {
            outcome = "timeout";
            throw new FalUpstreamException(new FalFailure(FalFailureKind.Timeout, null, $"fal did not answer the {operation} call in time."), e);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new FalUpstreamException(new FalFailure(FalFailureKind.Timeout, null, $"fal did not answer the {operation} call in time."), e);
        }
        catch (HttpRequestException e)
        {
            outcome = "connection_error";
            var detail = request.Method == HttpMethod.Post
                ? "The connection to fal failed during the submit; the job may or may not have been created, and it was not retried."
                : $"The connection to fal failed ({operation}).";
            throw new FalUpstreamException(new FalFailure(FalFailureKind.BadGateway, null, detail), e);
        }
        finally
        {
            metrics.FalCall(operation, outcome, time.GetElapsedTime(started));
        }
    }

    private async Task EnsureSuccessAsync(
        HttpResponseMessage response, string operation, CancellationToken cancellationToken, bool treatAsFailure = false)
    {
        if (response.IsSuccessStatusCode && !treatAsFailure)
        {
            return;
        }

        var code = (int)response.StatusCode;
        var (detail, errorType, fieldErrors) = await FalErrorParser.ReadAsync(response, cancellationToken);
        errorType ??= response.Headers.TryGetValues("X-Fal-Error-Type", out var types) ? types.FirstOrDefault() : null;
        var kind = FalErrorParser.KindFor(code, operation, errorType);

        if (kind == FalFailureKind.Misconfigured)
        {
            logger.LogError("fal refused the gateway's FAL key ({Operation}, {StatusCode}): check Fal__Key.", operation, code);
            detail = "fal refused the gateway's credentials. Operators: check the configured FAL key.";
        }
        else
        {
            logger.LogWarning("fal answered {StatusCode} to {Operation} ({ErrorType}).", code, operation, errorType);
        }

        var retryAfter = response.Headers.RetryAfter switch
        {
            { Delta: { } delta } => delta,
            { Date: { } date } => date - DateTimeOffset.UtcNow,
            _ => (TimeSpan?)null,
        };
        if (kind is FalFailureKind.RateLimited or FalFailureKind.AccountUnavailable)
        {
            retryAfter ??= TimeSpan.FromSeconds(kind == FalFailureKind.RateLimited ? 5 : 60);
        }

        if (string.IsNullOrWhiteSpace(detail))
        {
            detail = $"fal answered {code} to the {operation} call.";
        }

        throw new FalUpstreamException(new FalFailure(kind, code, detail, errorType, fieldErrors, retryAfter));
    }

    private static async Task<T> ReadJsonAsync<T>(
        HttpResponseMessage response, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> typeInfo, string operation,
        CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
            return await JsonSerializer.DeserializeAsync(stream, typeInfo, cancellationToken)
                ?? throw new JsonException("null");
        }
        catch (JsonException e)
        {
            throw new FalUpstreamException(new FalFailure(FalFailureKind.BadGateway, (int)response.StatusCode,
                $"fal's {operation} answer was not the JSON it should be."), e);
        }
        catch (HttpRequestException e)
        {
            throw new FalUpstreamException(new FalFailure(FalFailureKind.BadGateway, (int)response.StatusCode,
                $"fal's {operation} answer could not be read."), e);
        }
    }
}

internal sealed record FalResultBody(int StatusCode, byte[] Body);

internal enum FalCancelOutcome
{
    Requested,
    AlreadyCompleted,
}
