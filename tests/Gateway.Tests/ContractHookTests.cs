using System.Net;
using System.Text.Json.Nodes;
using Gateway.Tests.Infrastructure;
using Xunit.Sdk;

namespace Gateway.Tests;

/// <summary>
/// The check that holds every answer of the integration suite to docs/openapi.json must itself catch a mismatch, and
/// say which route, status and field: here the document is altered the way a lying contract would be.
/// </summary>
public sealed class ContractHookTests(RedisServer redis)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AnAnswerTheDocumentDoesNotAllow_FailsTheTestNamingRouteStatusAndField()
    {
        // The document as it was before issue 12: a Generation's error could not be null.
        var contract = Altered(document => document["components"]!["schemas"]!["GenerationResponse"]!["properties"]!["error"] =
            new JsonObject { ["$ref"] = "#/components/schemas/GenerationError" });
        var harness = await GatewayHarness.StartAsync(redis, contract: contract);
        var id = await harness.Client().SubmitAsync(new { prompt = "a lighthouse" });

        var failure = await Assert.ThrowsAsync<FailException>(() => harness.DisposeAsync().AsTask());

        Assert.Contains("POST /v1/generations → 202 application/json", failure.Message, StringComparison.Ordinal);
        Assert.Contains("/error:", failure.Message, StringComparison.Ordinal);
        Assert.Contains(id, failure.Message, StringComparison.Ordinal);
        Assert.Contains(OpenApiContract.RegenerateCommand, failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AStatusTheRouteDoesNotDocument_IsNamedWithTheDocumentedOnes()
    {
        var contract = Altered(document => document["paths"]!["/v1/generations/{id}"]!["get"]!["responses"]!.AsObject().Remove("404"));
        var harness = await GatewayHarness.StartAsync(redis, contract: contract);
        using (var response = await harness.Client().GetAsync("/v1/generations/no-such-id", Ct))
        {
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }

        var failure = await Assert.ThrowsAsync<FailException>(() => harness.DisposeAsync().AsTask());

        Assert.Contains("GET /v1/generations/{id} → 404 application/problem+json (for GET /v1/generations/no-such-id): status 404 is not documented",
            failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnUndocumentedHeaderOrAMissingRequiredOne_IsCaught()
    {
        var contract = Altered(document =>
        {
            var accepted = document["paths"]!["/v1/generations"]!["post"]!["responses"]!["202"]!["headers"]!.AsObject();
            accepted.Remove("RateLimit");
            accepted["X-Promised"] = new JsonObject { ["required"] = true, ["schema"] = new JsonObject { ["type"] = "string" } };
        });
        var harness = await GatewayHarness.StartAsync(redis, contract: contract);
        await harness.Client().SubmitAsync(new { prompt = "a lighthouse" });

        var failure = await Assert.ThrowsAsync<FailException>(() => harness.DisposeAsync().AsTask());

        Assert.Contains("POST /v1/generations → 202 application/json: header RateLimit is sent but not documented", failure.Message, StringComparison.Ordinal);
        Assert.Contains("POST /v1/generations → 202 application/json: header X-Promised is required by the document but was not sent", failure.Message, StringComparison.Ordinal);
    }

    /// <summary>A process gateway's answers are checked on the client side, by the handler its harness's clients use.</summary>
    [Fact]
    public async Task TheClientSideCheck_CatchesAMismatchToo()
    {
        var contract = Altered(document => document["components"]!["schemas"]!["StatusResponse"]!["required"]!.AsArray().Add("logs"));
        await using var harness = await GatewayHarness.StartAsync(redis);
        var id = await harness.Client().SubmitAsync(new { prompt = "a lighthouse" });
        var violations = new ContractViolations(contract);
        using var client = new HttpClient(new ContractCheckingHandler(violations, new SocketsHttpHandler())) { BaseAddress = harness.GatewayUrl };
        client.DefaultRequestHeaders.Authorization = new("Bearer", GatewayHarness.AlphaKey);

        using (var response = await client.GetAsync($"/v1/generations/{id}/status", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var failure = Assert.Throws<FailException>(violations.ThrowIfAny);
        Assert.Contains($"GET /v1/generations/{{id}}/status → 200 application/json (for GET /v1/generations/{id}/status)", failure.Message, StringComparison.Ordinal);
        Assert.Contains("\"logs\"", failure.Message, StringComparison.Ordinal);
    }

    private static OpenApiContract Altered(Action<JsonNode> change)
    {
        var document = JsonNode.Parse(File.ReadAllText(OpenApiContract.CommittedPath))!;
        change(document);
        return OpenApiContract.Parse(document.ToJsonString());
    }
}
