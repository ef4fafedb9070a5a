using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace FalEmulator;

/// <summary>Unauthenticated knobs for a standalone stand-in: counters, faults, reset.</summary>
internal static class ControlEndpoints
{
    public const string Prefix = "/_emulator";

    public static RouteGroupBuilder MapControl(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Prefix);
        group.MapGet("/stats", GetStats);
        group.MapPost("/faults", AddFault);
        group.MapDelete("/faults", ClearFaults);
        group.MapPost("/reset", Reset);
        return group;
    }

    private static JsonHttpResult<StatsResponse> GetStats(EmulatorServices s) => TypedResults.Json(s.State.Stats(), EmulatorJson.Default.StatsResponse);

    private static async Task<IResult> AddFault(HttpContext context, EmulatorServices s)
    {
        try
        {
            var rule = await JsonSerializer.DeserializeAsync(context.Request.Body, FaultRuleJson.Default.FaultRule, context.RequestAborted);
            if (rule is null)
            {
                return TypedResults.Json(new ErrorResponse("A FaultRule body is required"), EmulatorJson.Default.ErrorResponse,
                    statusCode: StatusCodes.Status400BadRequest);
            }

            s.State.AddFault(rule);
            return TypedResults.Json(s.State.Stats(), EmulatorJson.Default.StatsResponse);
        }
        catch (Exception ex) when (ex is JsonException or ArgumentException)
        {
            return TypedResults.Json(new ErrorResponse(ex.Message), EmulatorJson.Default.ErrorResponse, statusCode: StatusCodes.Status400BadRequest);
        }
    }

    private static JsonHttpResult<ResetResponse> ClearFaults(EmulatorServices s)
    {
        s.State.ClearFaults();
        return TypedResults.Json(new ResetResponse("faults cleared"), EmulatorJson.Default.ResetResponse);
    }

    private static JsonHttpResult<ResetResponse> Reset(EmulatorServices s)
    {
        s.State.Reset();
        return TypedResults.Json(new ResetResponse("reset"), EmulatorJson.Default.ResetResponse);
    }
}
