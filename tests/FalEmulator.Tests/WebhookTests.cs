using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using NSec.Cryptography;

namespace FalEmulator.Tests;

public sealed class WebhookTests
{
    [Fact]
    public async Task CompletedJob_PostsOkWebhook_SignedWithAJwksKey()
    {
        await using var receiver = await WebhookReceiver.Start();
        await using var emulator = await Emulator.Start(o => o.WebhookUserId = "user-42");
        var submitted = await emulator.Accepted(new { prompt = "hooked" }, query: "?fal_webhook=" + Uri.EscapeDataString(receiver.Url));
        var id = submitted.GetProperty("request_id").GetString()!;

        await Emulator.Eventually(() => !receiver.Received.IsEmpty, "the webhook");
        var hook = Assert.Single(receiver.Received);
        using var body = JsonDocument.Parse(hook.Body);

        Assert.Equal(id, body.RootElement.GetProperty("request_id").GetString());
        Assert.Equal(submitted.GetProperty("gateway_request_id").GetString(), body.RootElement.GetProperty("gateway_request_id").GetString());
        Assert.Equal("OK", body.RootElement.GetProperty("status").GetString());
        Assert.Equal(1, body.RootElement.GetProperty("payload").GetProperty("images").GetArrayLength());
        Assert.True(body.RootElement.GetProperty("payload").TryGetProperty("description", out _));
        Assert.Equal(id, hook.Headers["X-Fal-Webhook-Request-Id"]);
        Assert.Equal("user-42", hook.Headers["X-Fal-Webhook-User-Id"]);
        Assert.InRange(long.Parse(hook.Headers["X-Fal-Webhook-Timestamp"], System.Globalization.CultureInfo.InvariantCulture),
            DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        Assert.True(await Verifies(emulator, hook));
        // Counted once the receiver has answered, which can be just after the receiver has recorded the body.
        await Emulator.Eventually(() => emulator.State.WebhooksSent == 1, "the webhook to be counted as sent");
        Assert.Equal(1, emulator.State.WebhooksSent);
    }

    [Fact]
    public async Task FailedJob_PostsErrorWebhook_WithStatusCodeAndDetail()
    {
        await using var receiver = await WebhookReceiver.Start();
        await using var emulator = await Emulator.Start();
        await emulator.Accepted(new { prompt = "[[fault:content_policy@result]]" }, query: "?fal_webhook=" + Uri.EscapeDataString(receiver.Url));

        await Emulator.Eventually(() => !receiver.Received.IsEmpty, "the webhook");
        var hook = Assert.Single(receiver.Received);
        using var body = JsonDocument.Parse(hook.Body);

        Assert.Equal("ERROR", body.RootElement.GetProperty("status").GetString());
        Assert.Equal("Invalid status code: 422", body.RootElement.GetProperty("error").GetString());
        var detail = Assert.Single(body.RootElement.GetProperty("payload").GetProperty("detail").EnumerateArray());
        Assert.Equal("content_policy_violation", detail.GetProperty("type").GetString());
        Assert.True(await Verifies(emulator, hook));
    }

    [Fact]
    public async Task DuplicateFault_DeliversTheSameWebhookTwice()
    {
        await using var receiver = await WebhookReceiver.Start();
        await using var emulator = await Emulator.Start();
        await emulator.Accepted(new { prompt = "[[fault:duplicate@webhook]]" }, query: "?fal_webhook=" + Uri.EscapeDataString(receiver.Url));

        await Emulator.Eventually(() => receiver.Received.Count == 2, "two deliveries");
        var hooks = receiver.Received.ToArray();

        Assert.Equal(hooks[0].Body, hooks[1].Body);
        Assert.True(await Verifies(emulator, hooks[0]));
        Assert.True(await Verifies(emulator, hooks[1]));
        await Emulator.Eventually(() => emulator.State.WebhooksSent == 2, "both webhooks to be counted as sent");
        Assert.Equal(2, emulator.State.WebhooksSent);
    }

    [Fact]
    public async Task DropFaultRule_NeverSendsTheWebhook()
    {
        await using var receiver = await WebhookReceiver.Start();
        await using var emulator = await Emulator.Start(o => o.Faults = [new FaultRule { Operation = FalOperation.Webhook, Kind = "drop" }]);
        var submitted = await emulator.Accepted(new { prompt = "lost" }, query: "?fal_webhook=" + Uri.EscapeDataString(receiver.Url));
        await emulator.WaitCompleted(submitted);

        await Task.Delay(300, Emulator.Ct);

        Assert.Empty(receiver.Received);
        Assert.Equal(0, emulator.State.WebhooksSent);
    }

    [Fact]
    public async Task CorruptFault_SendsABodyTheSignatureDoesNotCover()
    {
        await using var receiver = await WebhookReceiver.Start();
        await using var emulator = await Emulator.Start();
        await emulator.Accepted(new { prompt = "[[fault:corrupt@webhook]]" }, query: "?fal_webhook=" + Uri.EscapeDataString(receiver.Url));

        await Emulator.Eventually(() => !receiver.Received.IsEmpty, "the webhook");
        var hook = Assert.Single(receiver.Received);

        using var body = JsonDocument.Parse(hook.Body);
        Assert.Equal("OK", body.RootElement.GetProperty("status").GetString());
        Assert.False(await Verifies(emulator, hook));
        Assert.True(Assert.Single(emulator.State.WebhookAttempts).Corrupted);
    }

    [Fact]
    public async Task DelayFault_SendsLater()
    {
        await using var receiver = await WebhookReceiver.Start();
        await using var emulator = await Emulator.Start(o => o.WebhookFaultDelay = TimeSpan.FromMilliseconds(800));
        var submitted = await emulator.Accepted(new { prompt = "[[fault:delay@webhook]]" }, query: "?fal_webhook=" + Uri.EscapeDataString(receiver.Url));
        await emulator.WaitCompleted(submitted);

        await Task.Delay(300, Emulator.Ct);
        Assert.Empty(receiver.Received);
        await Emulator.Eventually(() => !receiver.Received.IsEmpty, "the delayed webhook");
    }

    [Fact]
    public async Task FailedDelivery_IsRetried_UntilAccepted()
    {
        await using var receiver = await WebhookReceiver.Start();
        receiver.Answers.Enqueue(500);
        receiver.Answers.Enqueue(503);
        await using var emulator = await Emulator.Start(o => o.WebhookAttempts = 3);
        await emulator.Accepted(new { prompt = "retry me" }, query: "?fal_webhook=" + Uri.EscapeDataString(receiver.Url));

        await Emulator.Eventually(() => receiver.Received.Count == 3, "three attempts");
        await Emulator.Eventually(() => emulator.State.WebhooksSent == 3, "three recorded attempts");

        Assert.Equal([500, 503, 200], emulator.State.WebhookAttempts.Select(a => a.StatusCode));
        foreach (var hook in receiver.Received)
        {
            Assert.True(await Verifies(emulator, hook));
        }
    }

    [Fact]
    public async Task RotateSigningKey_KeepingOld_ListsBothKeys_AndSignsWithTheNewOne()
    {
        await using var receiver = await WebhookReceiver.Start();
        await using var emulator = await Emulator.Start();
        var before = await JwksKeys(emulator);

        emulator.State.RotateSigningKey(keepOld: true);
        var both = await JwksKeys(emulator);
        emulator.State.RotateSigningKey(keepOld: false);
        var after = await JwksKeys(emulator);
        await emulator.Accepted(new { prompt = "rotated" }, query: "?fal_webhook=" + Uri.EscapeDataString(receiver.Url));
        await Emulator.Eventually(() => !receiver.Received.IsEmpty, "the webhook");

        Assert.Single(before);
        Assert.Equal(2, both.Count);
        Assert.Contains(before[0], both);
        Assert.Single(after);
        Assert.DoesNotContain(after[0], both);
        Assert.True(await Verifies(emulator, Assert.Single(receiver.Received)));
    }

    [Fact]
    public async Task Jwks_IsServedAtRestAndRoot_AsOkpEd25519()
    {
        await using var emulator = await Emulator.Start();

        var (rest, restBody) = await emulator.Get(emulator.Host.JwksUrl);
        var (root, rootBody) = await emulator.Get(".well-known/jwks.json");

        Assert.True(rest.IsSuccessStatusCode);
        Assert.True(root.IsSuccessStatusCode);
        var key = Assert.Single(restBody.GetProperty("keys").EnumerateArray());
        Assert.Equal("OKP", key.GetProperty("kty").GetString());
        Assert.Equal("Ed25519", key.GetProperty("crv").GetString());
        Assert.Equal("sig", key.GetProperty("use").GetString());
        Assert.False(string.IsNullOrEmpty(key.GetProperty("kid").GetString()));
        Assert.Equal(32, FromBase64Url(key.GetProperty("x").GetString()!).Length);
        Assert.Equal(restBody.GetRawText(), rootBody.GetRawText());
    }

    /// <summary>Verifies as a receiver must: JWKS keys, message = id \n user \n timestamp \n sha256hex(body).</summary>
    private static async Task<bool> Verifies(Emulator emulator, ReceivedWebhook hook)
    {
        var message = Encoding.UTF8.GetBytes(string.Join('\n',
            hook.Headers["X-Fal-Webhook-Request-Id"],
            hook.Headers["X-Fal-Webhook-User-Id"],
            hook.Headers["X-Fal-Webhook-Timestamp"],
            Convert.ToHexStringLower(SHA256.HashData(hook.Body))));
        var signature = Convert.FromHexString(hook.Headers["X-Fal-Webhook-Signature"]);
        foreach (var x in await JwksKeys(emulator))
        {
            var key = PublicKey.Import(SignatureAlgorithm.Ed25519, FromBase64Url(x), KeyBlobFormat.RawPublicKey);
            if (SignatureAlgorithm.Ed25519.Verify(key, message, signature))
            {
                return true;
            }
        }

        return false;
    }

    private static async Task<List<string>> JwksKeys(Emulator emulator)
    {
        using var client = new HttpClient();
        var text = await client.GetStringAsync(emulator.Host.JwksUrl, Emulator.Ct);
        using var jwks = JsonDocument.Parse(text);
        return [.. jwks.RootElement.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("x").GetString()!)];
    }

    private static byte[] FromBase64Url(string value)
    {
        var base64 = value.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(base64.PadRight(base64.Length + (4 - base64.Length % 4) % 4, '='));
    }
}
