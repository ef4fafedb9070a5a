using Gateway.Proxy;
using Gateway.Upstream;
using Microsoft.Extensions.Primitives;

namespace Gateway.Tests.Unit;

/// <summary>The x-fal-target-url parser on its own: what it allows, where that goes, and what it refuses, with which answer.</summary>
public sealed class FalProxyTargetParserTests
{
    private const string Invalid = "Invalid request";
    private const string NotAllowedHost = "The target host is not allowed: only queue.fal.run, rest.fal.ai and fal.run (without port or credentials).";
    private const string BadCharacters = "The target URL contains characters that are not allowed.";
    private const string NotHttps = "The target URL must be an https URL.";
    private const string BadPathCharacters = "The target path contains characters that are not allowed (no percent-encoding).";
    private const string DotSegments = "The target path has empty or dot segments.";
    private const string BadQuery = "The target query string is malformed or repeats a parameter.";
    private const string RequestId = "764cabcf-b745-4b3e-ae38-1200304cf45b";

    private static readonly FalOptions Fal = new();

    private static (FalProxyTarget? Target, FalProxyRefusal? Refusal) Parse(
        string url, string method, bool allowRun = false, bool legacy = false) =>
        FalProxyTargetParser.Parse(new StringValues(url), method, Fal, new FalProxyOptions { AllowRun = allowRun, LegacyStatusCodes = legacy });

    public static TheoryData<string, string, string, string, string?, string?, string> AllowedTargets => new()
    {
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5", "Submit", "Queue", "microsoft/mai-image-2.5", null,
            "https://queue.fal.run/microsoft/mai-image-2.5" },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5/edit", "Submit", "Queue", "microsoft/mai-image-2.5/edit", null,
            "https://queue.fal.run/microsoft/mai-image-2.5/edit" },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5?fal_max_queue_length=3", "Submit", "Queue", "microsoft/mai-image-2.5", null,
            "https://queue.fal.run/microsoft/mai-image-2.5?fal_max_queue_length=3" },
        // The caller's webhook is dropped: the gateway registers its own.
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5?fal_webhook=https%3A%2F%2Fevil.example%2Fhook", "Submit", "Queue",
            "microsoft/mai-image-2.5", null, "https://queue.fal.run/microsoft/mai-image-2.5" },
        { "post", "https://QUEUE.FAL.RUN/microsoft/mai-image-2.5", "Submit", "Queue", "microsoft/mai-image-2.5", null,
            "https://queue.fal.run/microsoft/mai-image-2.5" },
        { "GET", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/status", "Status", "Queue",
            "microsoft/mai-image-2.5", RequestId, $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/status" },
        { "GET", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/status?logs=1", "Status", "Queue",
            "microsoft/mai-image-2.5", RequestId, $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/status?logs=1" },
        { "GET", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/status/stream?logs=true", "StatusStream", "Queue",
            "microsoft/mai-image-2.5", RequestId, $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/status/stream?logs=true" },
        { "GET", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}", "Result", "Queue",
            "microsoft/mai-image-2.5", RequestId, $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}" },
        { "PUT", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/cancel", "Cancel", "Queue",
            "microsoft/mai-image-2.5", RequestId, $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/cancel" },
        { "POST", "https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3", "StorageInitiate", "Rest", null, null,
            "https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3" },
        { "POST", "https://rest.fal.ai/storage/upload/initiate-multipart?storage_type=fal-cdn-v3", "StorageInitiateMultipart", "Rest", null, null,
            "https://rest.fal.ai/storage/upload/initiate-multipart?storage_type=fal-cdn-v3" },
        { "POST", "https://rest.fal.ai/storage/upload/complete-multipart?storage_type=fal-cdn-v3", "StorageCompleteMultipart", "Rest", null, null,
            "https://rest.fal.ai/storage/upload/complete-multipart?storage_type=fal-cdn-v3" },
    };

    [Theory]
    [MemberData(nameof(AllowedTargets))]
    public void Parse_AllowedTarget_GivesItsOperationEndpointRequestIdAndUpstreamUrl(
        string method, string url, string operation, string host, string? endpointId, string? requestId, string destination)
    {
        var (target, refusal) = Parse(url, method);

        Assert.Null(refusal);
        Assert.NotNull(target);
        Assert.Equal(operation, target.Operation.ToString());
        Assert.Equal(host, target.Host.ToString());
        Assert.Equal(endpointId, target.EndpointId);
        Assert.Equal(requestId, target.RequestId);
        Assert.Equal(destination, target.Destination(Fal).AbsoluteUri);
    }

    [Theory]
    [InlineData("https://queue.fal.run/microsoft/mai-image-2.5", true)]
    [InlineData("https://queue.fal.run/microsoft/mai-image-2.5/edit", true)]
    [InlineData($"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}", false)]
    [InlineData("https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3", false)]
    public void IsSubmit_IsTrueOnlyForModelSubmits(string url, bool isSubmit)
    {
        var method = url.Contains("/requests/", StringComparison.Ordinal) ? "GET" : "POST";
        Assert.Equal(isSubmit, Parse(url, method).Target!.IsSubmit);
    }

    [Fact]
    public void Parse_RunTarget_IsAllowedOnlyWhenAllowRunIsSet()
    {
        var (target, refusal) = Parse("https://fal.run/microsoft/mai-image-2.5", "POST", allowRun: true);

        Assert.Null(refusal);
        Assert.Equal(FalProxyOperation.Run, target!.Operation);
        Assert.Equal(FalHost.Run, target.Host);
        Assert.Equal("microsoft/mai-image-2.5", target.EndpointId);
        Assert.Null(target.RequestId);
        Assert.True(target.IsSubmit);
        Assert.Equal("https://fal.run/microsoft/mai-image-2.5", target.Destination(Fal).AbsoluteUri);

        var (refusedTarget, refused) = Parse("https://fal.run/microsoft/mai-image-2.5", "POST", allowRun: false);
        Assert.Null(refusedTarget);
        Assert.Equal(new FalProxyRefusal(400, Invalid, "POST fal.run/microsoft/mai-image-2.5 is not an allowed fal endpoint for this gateway."), refused);
    }

    [Fact]
    public void Destination_MapsEachHostOntoItsConfiguredBaseUrl_KeepingAPathPrefix_AndAddsExtraQuery()
    {
        var fal = new FalOptions
        {
            QueueBaseUrl = "http://localhost:5100/",
            RestBaseUrl = "http://localhost:5100/rest",
            RunBaseUrl = "http://localhost:5100/run/",
        };
        var proxy = new FalProxyOptions { AllowRun = true };

        var submit = FalProxyTargetParser.Parse(new StringValues("https://queue.fal.run/microsoft/mai-image-2.5?fal_max_queue_length=7"), "POST", fal, proxy).Target!;
        var storage = FalProxyTargetParser.Parse(new StringValues("https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3"), "POST", fal, proxy).Target!;
        var run = FalProxyTargetParser.Parse(new StringValues("https://fal.run/microsoft/mai-image-2.5/edit"), "POST", fal, proxy).Target!;

        Assert.Equal("http://localhost:5100/microsoft/mai-image-2.5?fal_max_queue_length=7&fal_webhook=https%3A%2F%2Fgw.example%2Fv1%2Fwebhooks%2Ffal",
            submit.Destination(fal, [new("fal_webhook", "https://gw.example/v1/webhooks/fal")]).AbsoluteUri);
        Assert.Equal("http://localhost:5100/rest/storage/upload/initiate?storage_type=fal-cdn-v3", storage.Destination(fal).AbsoluteUri);
        Assert.Equal("http://localhost:5100/run/microsoft/mai-image-2.5/edit", run.Destination(fal).AbsoluteUri);
    }

    [Fact]
    public void Parse_PercentEncodedQueryValue_IsDecodedAndReEncoded()
    {
        var (target, refusal) = Parse("https://queue.fal.run/microsoft/mai-image-2.5?fal_max_queue_length=%31%32", "POST");

        Assert.Null(refusal);
        Assert.Equal([new KeyValuePair<string, string>("fal_max_queue_length", "12")], target!.Query);
        Assert.Equal("https://queue.fal.run/microsoft/mai-image-2.5?fal_max_queue_length=12", target.Destination(Fal).AbsoluteUri);
    }

    public static TheoryData<string, string, string> RefusedTargets => new()
    {
        // Schemes.
        { "POST", "http://queue.fal.run/microsoft/mai-image-2.5", NotHttps },
        { "POST", "HTTPS://queue.fal.run/microsoft/mai-image-2.5", NotHttps },
        { "POST", "ftp://queue.fal.run/microsoft/mai-image-2.5", NotHttps },
        { "POST", "wss://queue.fal.run/microsoft/mai-image-2.5", NotHttps },
        { "POST", "//queue.fal.run/microsoft/mai-image-2.5", NotHttps },
        { "POST", "/microsoft/mai-image-2.5", NotHttps },
        { "GET", "javascript:alert(1)", NotHttps },
        // Userinfo, ports, IP literals, look-alikes, unknown hosts.
        { "POST", "https://user@queue.fal.run/microsoft/mai-image-2.5", NotAllowedHost },
        { "POST", "https://user:secret@queue.fal.run/microsoft/mai-image-2.5", NotAllowedHost },
        { "POST", "https://queue.fal.run@evil.example/microsoft/mai-image-2.5", NotAllowedHost },
        { "POST", "https://queue.fal.run:443/microsoft/mai-image-2.5", NotAllowedHost },
        { "POST", "https://queue.fal.run:8443/microsoft/mai-image-2.5", NotAllowedHost },
        { "POST", "https://127.0.0.1/microsoft/mai-image-2.5", NotAllowedHost },
        { "POST", "https://[::1]/microsoft/mai-image-2.5", NotAllowedHost },
        { "POST", "https://169.254.169.254/latest/meta-data", NotAllowedHost },
        { "POST", "https://queue.fal.run./microsoft/mai-image-2.5", NotAllowedHost },
        { "POST", "https://queue.fal.run.evil.example/microsoft/mai-image-2.5", NotAllowedHost },
        { "POST", "https://evilqueue.fal.run/microsoft/mai-image-2.5", NotAllowedHost },
        { "POST", "https://fal.ai/microsoft/mai-image-2.5", NotAllowedHost },
        { "POST", "https://rest.alpha.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3", NotAllowedHost },
        { "POST", "https://example.com/microsoft/mai-image-2.5", NotAllowedHost },
        { "POST", "https:///microsoft/mai-image-2.5", NotAllowedHost },
        // Encoded slashes and other percent-encoding in the path.
        { "GET", $"https://queue.fal.run/microsoft%2Fmai-image-2.5/requests/{RequestId}", BadPathCharacters },
        { "GET", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}%2Fstatus", BadPathCharacters },
        { "GET", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}%2fstatus", BadPathCharacters },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5/%2e%2e/other", BadPathCharacters },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5;x=1", BadPathCharacters },
        // Dot and empty segments.
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5/../other-model", DotSegments },
        { "POST", "https://queue.fal.run/microsoft/./mai-image-2.5", DotSegments },
        { "POST", "https://queue.fal.run//microsoft/mai-image-2.5", DotSegments },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5/", DotSegments },
        { "POST", "https://fal.run", DotSegments },
        // Duplicate or malformed query parameters.
        { "GET", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/status?logs=1&logs=1", BadQuery },
        { "GET", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/status?logs=1&%6Cogs=0", BadQuery },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5?fal_webhook=a&fal_webhook=b", BadQuery },
        // Fragments, whitespace, control characters, backslashes, list separators, non-ASCII.
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5#fragment", BadCharacters },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5 ", BadCharacters },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5\r\nX-Injected: 1", BadCharacters },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5\t", BadCharacters },
        { "POST", "https://queue.fal.run\\@evil.example/microsoft/mai-image-2.5", BadCharacters },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5,https://evil.example/", BadCharacters },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5\u00e9", BadCharacters },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5\u007f", BadCharacters },
        // Wrong methods.
        { "GET", "https://queue.fal.run/microsoft/mai-image-2.5", "GET queue.fal.run/microsoft/mai-image-2.5 is not an allowed fal endpoint for this gateway." },
        { "PUT", "https://queue.fal.run/microsoft/mai-image-2.5", "PUT queue.fal.run/microsoft/mai-image-2.5 is not an allowed fal endpoint for this gateway." },
        { "DELETE", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}",
            $"DELETE queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId} is not an allowed fal endpoint for this gateway." },
        { "POST", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/status",
            $"POST queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/status is not an allowed fal endpoint for this gateway." },
        { "GET", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/cancel",
            $"GET queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/cancel is not an allowed fal endpoint for this gateway." },
        { "PUT", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/status",
            $"PUT queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/status is not an allowed fal endpoint for this gateway." },
        { "GET", "https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3",
            "GET rest.fal.ai/storage/upload/initiate is not an allowed fal endpoint for this gateway." },
        // Other models, other apps, sub-paths, unknown endpoints, malformed request ids.
        { "POST", "https://queue.fal.run/fal-ai/flux/dev", "POST queue.fal.run/fal-ai/flux/dev is not an allowed fal endpoint for this gateway." },
        { "POST", "https://queue.fal.run/Microsoft/MAI-Image-2.5", "POST queue.fal.run/Microsoft/MAI-Image-2.5 is not an allowed fal endpoint for this gateway." },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5/edit/extra", "POST queue.fal.run/microsoft/mai-image-2.5/edit/extra is not an allowed fal endpoint for this gateway." },
        { "GET", $"https://queue.fal.run/fal-ai/flux/requests/{RequestId}", $"GET queue.fal.run/fal-ai/flux/requests/{RequestId} is not an allowed fal endpoint for this gateway." },
        { "GET", $"https://queue.fal.run/microsoft/mai-image-2.5/edit/requests/{RequestId}/status",
            $"GET queue.fal.run/microsoft/mai-image-2.5/edit/requests/{RequestId}/status is not an allowed fal endpoint for this gateway." },
        { "GET", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/logs",
            $"GET queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/logs is not an allowed fal endpoint for this gateway." },
        { "GET", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/status/stream/more",
            $"GET queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/status/stream/more is not an allowed fal endpoint for this gateway." },
        { "GET", "https://queue.fal.run/microsoft/mai-image-2.5/requests/a.b/status",
            "GET queue.fal.run/microsoft/mai-image-2.5/requests/a.b/status is not an allowed fal endpoint for this gateway." },
        { "GET", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{new string('a', 129)}",
            $"GET queue.fal.run/microsoft/mai-image-2.5/requests/{new string('a', 129)} is not an allowed fal endpoint for this gateway." },
        { "POST", "https://rest.fal.ai/storage/upload/complete?storage_type=fal-cdn-v3",
            "POST rest.fal.ai/storage/upload/complete is not an allowed fal endpoint for this gateway." },
        { "POST", "https://rest.fal.ai/microsoft/mai-image-2.5", "POST rest.fal.ai/microsoft/mai-image-2.5 is not an allowed fal endpoint for this gateway." },
        { "POST", "https://queue.fal.run?fal_max_queue_length=1", "POST queue.fal.run is not an allowed fal endpoint for this gateway." },
        // Query parameters the operation does not take, or values it does not accept.
        // A stray % is left as it is (not decoded), so the value is not a number.
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5?fal_max_queue_length=%zz", "The query parameter 'fal_max_queue_length' is not allowed on this target." },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5?fal_max_queue_length=-1", "The query parameter 'fal_max_queue_length' is not allowed on this target." },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5?fal_max_queue_length=99999999999", "The query parameter 'fal_max_queue_length' is not allowed on this target." },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5?logs=1", "The query parameter 'logs' is not allowed on this target." },
        { "POST", "https://queue.fal.run/microsoft/mai-image-2.5?api_key=x", "The query parameter 'api_key' is not allowed on this target." },
        { "GET", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/status?logs=yes", "The query parameter 'logs' is not allowed on this target." },
        { "GET", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/status?logs", "The query parameter 'logs' is not allowed on this target." },
        { "GET", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}?logs=1", "The query parameter 'logs' is not allowed on this target." },
        { "PUT", $"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/cancel?fal_webhook=x", "The query parameter 'fal_webhook' is not allowed on this target." },
        { "POST", "https://rest.fal.ai/storage/upload/initiate?storage_type=gcs", "The query parameter 'storage_type' is not allowed on this target." },
        { "POST", "https://rest.fal.ai/storage/upload/initiate", "Storage calls must ask for ?storage_type=fal-cdn-v3." },
        { "POST", "https://rest.fal.ai/storage/upload/complete-multipart", "Storage calls must ask for ?storage_type=fal-cdn-v3." },
    };

    [Theory]
    [MemberData(nameof(RefusedTargets))]
    public void Parse_RefusedTarget_Gives400InvalidRequestWithTheReason(string method, string url, string detail)
    {
        var (target, refusal) = Parse(url, method);

        Assert.Null(target);
        Assert.Equal(new FalProxyRefusal(400, Invalid, detail), refusal);
    }

    [Theory]
    [MemberData(nameof(RefusedTargets))]
    public void Parse_RefusedTarget_WithLegacyStatusCodes_Gives412InvalidHeader(string method, string url, string detail)
    {
        var (target, refusal) = Parse(url, method, legacy: true);

        Assert.Null(target);
        Assert.Equal(new FalProxyRefusal(412, "Invalid x-fal-target-url header", detail), refusal);
    }

    [Fact]
    public void Parse_TargetOnFalRun_IsRefusedWithoutAllowRun_WhateverTheModel()
    {
        var (_, refusal) = Parse("https://fal.run/microsoft/mai-image-2.5/edit", "POST");

        Assert.Equal(new FalProxyRefusal(400, Invalid, "POST fal.run/microsoft/mai-image-2.5/edit is not an allowed fal endpoint for this gateway."), refusal);
    }

    [Fact]
    public void Parse_RunTarget_WithAllowRun_StillRefusesOtherModelsAndGet()
    {
        Assert.Equal(new FalProxyRefusal(400, Invalid, "POST fal.run/fal-ai/flux/dev is not an allowed fal endpoint for this gateway."),
            Parse("https://fal.run/fal-ai/flux/dev", "POST", allowRun: true).Refusal);
        Assert.Equal(new FalProxyRefusal(400, Invalid, "GET fal.run/microsoft/mai-image-2.5 is not an allowed fal endpoint for this gateway."),
            Parse("https://fal.run/microsoft/mai-image-2.5", "GET", allowRun: true).Refusal);
    }

    [Theory]
    [InlineData(false, 400, "Invalid request")]
    [InlineData(true, 400, "Missing the x-fal-target-url header")]
    public void Parse_MissingOrBlankHeader_IsRefusedAsMissing(bool legacy, int status, string message)
    {
        var proxy = new FalProxyOptions { LegacyStatusCodes = legacy };
        var expected = new FalProxyRefusal(status, message, "The x-fal-target-url header is required.");

        Assert.Equal((null, expected), FalProxyTargetParser.Parse(StringValues.Empty, "POST", Fal, proxy));
        Assert.Equal((null, expected), FalProxyTargetParser.Parse(new StringValues(""), "POST", Fal, proxy));
        Assert.Equal((null, expected), FalProxyTargetParser.Parse(new StringValues("   "), "POST", Fal, proxy));
    }

    [Fact]
    public void Parse_TwoHeaderValues_IsRefused()
    {
        var header = new StringValues(["https://queue.fal.run/microsoft/mai-image-2.5", "https://queue.fal.run/microsoft/mai-image-2.5"]);

        var (target, refusal) = FalProxyTargetParser.Parse(header, "POST", Fal, new FalProxyOptions());

        Assert.Null(target);
        Assert.Equal(new FalProxyRefusal(400, Invalid, "Exactly one x-fal-target-url header value is allowed."), refusal);
    }

    [Fact]
    public void Parse_TargetLongerThan4096Characters_IsRefused_AndOneOf4096IsParsed()
    {
        const string prefix = "https://queue.fal.run/microsoft/mai-image-2.5/requests/";
        var atLimit = prefix + new string('a', 4096 - prefix.Length);
        var overLimit = atLimit + "a";

        Assert.Equal(new FalProxyRefusal(400, Invalid, "The target URL is too long."), Parse(overLimit, "GET").Refusal);
        // 4096 is allowed by length; this one is then refused only because the id is longer than 128.
        Assert.Equal(new FalProxyRefusal(400, Invalid, $"GET queue.fal.run{atLimit["https://queue.fal.run".Length..]} is not an allowed fal endpoint for this gateway."),
            Parse(atLimit, "GET").Refusal);
    }

    [Fact]
    public void Parse_RequestIdOf128Characters_IsAllowed()
    {
        var id = new string('a', 64) + "-" + new string('B', 62) + "_";

        var (target, refusal) = Parse($"https://queue.fal.run/microsoft/mai-image-2.5/requests/{id}/status", "GET");

        Assert.Null(refusal);
        Assert.Equal(id, target!.RequestId);
    }

    [Fact]
    public void Parse_EmptyQueryPairs_AreIgnored()
    {
        var (target, refusal) = Parse($"https://queue.fal.run/microsoft/mai-image-2.5/requests/{RequestId}/status?&logs=0&", "GET");

        Assert.Null(refusal);
        Assert.Equal([new KeyValuePair<string, string>("logs", "0")], target!.Query);
    }

    [Fact]
    public void Parse_WithAnotherConfiguredModel_AllowsThatModelOnly()
    {
        var fal = new FalOptions { Model = "acme/painter/v2" };
        var proxy = new FalProxyOptions();

        var submit = FalProxyTargetParser.Parse(new StringValues("https://queue.fal.run/acme/painter/v2/edit"), "POST", fal, proxy);
        var status = FalProxyTargetParser.Parse(new StringValues($"https://queue.fal.run/acme/painter/requests/{RequestId}/status"), "GET", fal, proxy);
        var old = FalProxyTargetParser.Parse(new StringValues("https://queue.fal.run/microsoft/mai-image-2.5"), "POST", fal, proxy);

        Assert.Equal((FalProxyOperation.Submit, "acme/painter/v2/edit"), (submit.Target!.Operation, submit.Target.EndpointId));
        Assert.Equal((FalProxyOperation.Status, "acme/painter", RequestId), (status.Target!.Operation, status.Target.EndpointId, status.Target.RequestId));
        Assert.Equal(new FalProxyRefusal(400, Invalid, "POST queue.fal.run/microsoft/mai-image-2.5 is not an allowed fal endpoint for this gateway."), old.Refusal);
    }
}
