using System.Text.Json;
using Gateway.Clients;
using Gateway.Hosting;
using Gateway.Storage;
using Gateway.Upstream;
using Microsoft.Extensions.Options;

namespace Gateway.Generations;

/// <summary>Submits jobs to fal (from /v1 or the client proxy) and records what fal accepted, telling the listeners.</summary>
internal sealed partial class GenerationSubmitter(
    FalQueueClient fal,
    IGenerationStore store,
    IOptions<GenerationOptions> generationOptions,
    IOptions<FalOptions> falOptions,
    IEnumerable<IGenerationListener> listeners,
    TimeProvider time,
    ILogger<GenerationSubmitter> logger)
{
    public string GenerateModel => falOptions.Value.Model;

    public string EditModel => falOptions.Value.EditModel;

    /// <summary>Where fal should deliver the completion webhook: <c>{PublicBaseUrl}/v1/webhooks/fal</c>, or null (the gateway polls).</summary>
    public string? WebhookUrl => generationOptions.Value.PublicBaseUrl is { Length: > 0 } publicBase
        ? $"{publicBase.TrimEnd('/')}/v1/webhooks/fal"
        : null;

    public async Task<GenerationRecord> SubmitAsync(Owner owner, string endpointId, ImageRequest request)
    {
        // A job fal accepted but the gateway cannot record would be billed and lost: check the store first.
        if (!await store.IsHealthyAsync(CancellationToken.None))
        {
            throw new StoreUnavailableException("The gateway's store (Redis) is not reachable, so no job was submitted.", beforeSubmit: true);
        }

        var input = JsonSerializer.SerializeToUtf8Bytes(request.ToFalInput(), FalInputJsonContext.Wire.FalImageInput);

        // Once the bytes may have left, nothing cancels or repeats the submit: fal would bill a second job.
        var submitted = await fal.SubmitAsync(endpointId, input, WebhookUrl, CancellationToken.None);
        return await RecordSubmittedAsync(owner, endpointId, submitted, request);
    }

    /// <summary>
    /// Records a job fal accepted as owned by <paramref name="owner"/> and tells the listeners; shared by the
    /// /v1 routes and the fal client proxy, so either sees the other's jobs.
    /// </summary>
    public async Task<GenerationRecord> RecordSubmittedAsync(Owner owner, string endpointId, FalSubmitResponse submitted, ImageRequest request)
    {
        GatewayMetrics.TagRequestId(submitted.RequestId);
        var record = new GenerationRecord
        {
            Id = submitted.RequestId,
            Client = owner.Client,
            User = owner.User,
            Model = endpointId,
            Status = GenerationStatus.InQueue,
            QueuePosition = submitted.QueuePosition,
            CreatedAt = time.GetUtcNow(),
            StatusUrl = QueueUrl(submitted.StatusUrl, submitted.RequestId, "/status"),
            ResponseUrl = QueueUrl(submitted.ResponseUrl, submitted.RequestId, ""),
            CancelUrl = QueueUrl(submitted.CancelUrl, submitted.RequestId, "/cancel"),
            NumImages = request.NumImages ?? 1,
            Prompt = request.Prompt,
            Options = GenerationChoices.Of(request.ToFalInput()),
        };
        await CreateWithRetriesAsync(record);
        LogSubmitted(logger, record.Id, owner.Client, endpointId, record.NumImages);
        foreach (var listener in listeners)
        {
            await listener.OnSubmittedAsync(record, CancellationToken.None);
        }

        return record;
    }

    private async Task CreateWithRetriesAsync(GenerationRecord record)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await store.CreateAsync(record, CancellationToken.None);
                return;
            }
            catch (Exception e) when (attempt < 3 && RedisFailure.IsUnavailable(e))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), time);
            }
            catch (Exception e) when (RedisFailure.IsUnavailable(e))
            {
                LogLostRecord(logger, record.Id, record.Client, e);
                throw new StoreUnavailableException(
                    $"fal accepted the job as '{record.Id}', but the gateway could not record it; operators can find it in the logs.", e);
            }
        }
    }

    /// <summary>fal's own URL when it points at the configured queue host, else the documented owner/app form.</summary>
    private string QueueUrl(string? returned, string requestId, string suffix)
    {
        var options = falOptions.Value;
        var queueBase = new Uri(options.QueueBaseUrl);
        if (Uri.TryCreate(returned, UriKind.Absolute, out var uri)
            && uri.Scheme == queueBase.Scheme && uri.Authority == queueBase.Authority && uri.AbsolutePath.EndsWith(requestId + suffix, StringComparison.Ordinal))
        {
            return uri.GetLeftPart(UriPartial.Path);
        }

        return $"{options.QueueBaseUrl.TrimEnd('/')}/{options.AppId}/requests/{Uri.EscapeDataString(requestId)}{suffix}";
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Submitted generation {GenerationId} for {Client} to {Model} ({NumImages} images)")]
    private static partial void LogSubmitted(ILogger logger, string generationId, string client, string model, int numImages);

    [LoggerMessage(Level = LogLevel.Error, Message = "fal accepted generation {GenerationId} for {Client} but the store write failed; it is not tracked")]
    private static partial void LogLostRecord(ILogger logger, string generationId, string client, Exception exception);
}
