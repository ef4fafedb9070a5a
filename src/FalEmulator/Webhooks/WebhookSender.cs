using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace FalEmulator;

/// <summary>POSTs fal's signed completion webhook, with the faults and quick retries of a stand-in.</summary>
internal sealed partial class WebhookSender(
    FalEmulatorOptions options,
    FalEmulatorState state,
    SigningKeys keys,
    TimeProvider time,
    ILogger<WebhookSender> logger) : IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(1) })
    {
        Timeout = TimeSpan.FromSeconds(10),
    };

    private readonly CancellationTokenSource _stopping = new();

    public void Send(Job job)
    {
        if (job.WebhookUrl is null || job.Outcome is null)
        {
            return;
        }

        _ = Task.Run(() => Deliver(job, job.WebhookUrl, job.Outcome, _stopping.Token));
    }

    public void Dispose()
    {
        // Cancel only: background work may still read the token, and the host disposes twice (explicitly, then DI).
        _stopping.Cancel();
        _http.Dispose();
    }

    internal static byte[] SignedMessage(string requestId, string userId, string timestamp, ReadOnlySpan<byte> body) =>
        Encoding.UTF8.GetBytes($"{requestId}\n{userId}\n{timestamp}\n{Convert.ToHexStringLower(SHA256.HashData(body))}");

    private async Task Deliver(Job job, string url, JobOutcome outcome, CancellationToken ct)
    {
        try
        {
            var fault = state.TakeFault(FalOperation.Webhook, job.Id) ?? job.Directives.Take(FalOperation.Webhook);
            var delay = options.WebhookDelay + (fault == FaultKinds.Delay ? options.WebhookFaultDelay : TimeSpan.Zero);
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, time, ct);
            }

            if (fault == FaultKinds.Drop)
            {
                return;
            }

            var body = JsonSerializer.SerializeToUtf8Bytes(Body(job, outcome), EmulatorJson.Default.WebhookBody);
            var deliveries = fault == FaultKinds.Duplicate ? 2 : 1;
            for (var i = 0; i < deliveries; i++)
            {
                await DeliverWithRetries(job.Id, url, body, fault == FaultKinds.Corrupt, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // the emulator is stopping
        }
#pragma warning disable CA1031 // a background delivery must never crash the process
        catch (Exception ex)
#pragma warning restore CA1031
        {
            LogDeliveryFailed(logger, ex, job.Id);
        }
    }

    private async Task DeliverWithRetries(string requestId, string url, byte[] body, bool corrupt, CancellationToken ct)
    {
        var backoff = options.WebhookRetryBackoff;
        for (var attempt = 1; attempt <= options.WebhookAttempts; attempt++)
        {
            var timestamp = time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
            var signature = Convert.ToHexStringLower(keys.Sign(SignedMessage(requestId, options.WebhookUserId, timestamp, body)));
            var sent = corrupt ? Corrupt(body) : body;

            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(sent) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            request.Headers.Add("X-Fal-Webhook-Request-Id", requestId);
            request.Headers.Add("X-Fal-Webhook-User-Id", options.WebhookUserId);
            request.Headers.Add("X-Fal-Webhook-Timestamp", timestamp);
            request.Headers.Add("X-Fal-Webhook-Signature", signature);

            int? status = null;
            string? error = null;
            var sentAt = time.GetUtcNow();
            try
            {
                using var response = await _http.SendAsync(request, ct);
                status = (int)response.StatusCode;
            }
            catch (HttpRequestException ex)
            {
                error = ex.Message;
            }
            catch (TaskCanceledException ex) when (!ct.IsCancellationRequested)
            {
                error = ex.Message;
            }

            state.RecordWebhook(new WebhookAttempt(requestId, url, status, error, corrupt, time.GetUtcNow()) { SentAt = sentAt });
            if (status is >= 200 and < 300)
            {
                return;
            }

            if (attempt < options.WebhookAttempts)
            {
                await Task.Delay(backoff, time, ct);
                backoff *= 2;
            }
        }
    }

    private static WebhookBody Body(Job job, JobOutcome outcome)
    {
        var payload = outcome.Payload();
        return outcome.StatusCode is >= 200 and < 300
            ? new WebhookBody(job.Id, job.GatewayRequestId, "OK", payload)
            : new WebhookBody(job.Id, job.GatewayRequestId, "ERROR", payload, $"Invalid status code: {outcome.StatusCode}");
    }

    // The body changes after signing, so the signature no longer matches while the JSON stays valid.
    private static byte[] Corrupt(byte[] body) => [(byte)'{', .. "\"tampered\":true,"u8, .. body.AsSpan(1)];

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook delivery for {RequestId} failed")]
    private static partial void LogDeliveryFailed(ILogger logger, Exception exception, string requestId);
}
