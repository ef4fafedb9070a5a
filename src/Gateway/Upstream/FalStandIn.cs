using Microsoft.Extensions.Options;
#if FAL_STAND_IN
using FalEmulator;
#endif

namespace Gateway.Upstream;

/// <summary>
/// <c>Fal:UseEmulator=true</c>: the offline fal stand-in inside the gateway. It answers with fake images, so it
/// starts in Development only, and only Debug builds carry it (FAL_STAND_IN, see Gateway.csproj).
/// </summary>
internal static class FalStandIn
{
    private const string Setting = "Fal__UseEmulator";

    public static IHostApplicationBuilder AddFalStandIn(this IHostApplicationBuilder builder)
    {
#if FAL_STAND_IN
        if (builder.Configuration.GetSection(FalOptions.SectionName).GetValue<bool>(nameof(FalOptions.UseEmulator))
            && Refusal(builder.Environment) is null)
        {
            Start(builder);
        }
#endif

        // A refusal stops the start (exit 1) with the other configuration errors, naming the setting.
        builder.Services.AddSingleton<IValidateOptions<FalOptions>, Validation>();
        return builder;
    }

    /// <summary>Why the stand-in cannot run here, or null when it can.</summary>
    private static string? Refusal(IHostEnvironment environment)
    {
        if (!environment.IsDevelopment())
        {
            return $"{Setting}=true is refused in the {environment.EnvironmentName} environment: the fal stand-in answers "
                + "with fake images and runs in Development only. Set a FAL key instead, or run the stand-in on its own "
                + "and point Fal__QueueBaseUrl, Fal__RestBaseUrl, Fal__RunBaseUrl and Fal__JwksUrl at it.";
        }
#if FAL_STAND_IN
        return null;
#else
        return $"{Setting}=true, but this build of the gateway carries no fal stand-in (only Debug builds do): use "
            + "`dotnet run --project src/Gateway`, or run the stand-in on its own (`dotnet run --project src/FalEmulator`), "
            + "point Fal__QueueBaseUrl, Fal__RestBaseUrl, Fal__RunBaseUrl and Fal__JwksUrl at it and set Fal__UseEmulator=false.";
#endif
    }

#if FAL_STAND_IN
    /// <summary>The stand-in on a loopback port, with every fal URL and the FAL key pointed at it.</summary>
    private static void Start(IHostApplicationBuilder builder)
    {
        var emulatorOptions = new FalEmulatorOptions();
        builder.Configuration.GetSection(FalEmulatorOptions.SectionName).Bind(emulatorOptions);
        var emulator = FalEmulatorHost.StartAsync(emulatorOptions).GetAwaiter().GetResult();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Fal:QueueBaseUrl"] = emulator.QueueBaseUrl,
            ["Fal:RestBaseUrl"] = emulator.RestBaseUrl,
            ["Fal:RunBaseUrl"] = emulator.RunBaseUrl,
            ["Fal:JwksUrl"] = emulator.JwksUrl,
            ["Fal:Key"] = emulatorOptions.Key,
        });
        builder.Services.AddSingleton(_ => emulator); // disposed (stopped) with the container
        Console.WriteLine($"fal stand-in running at {emulator.BaseUrl} (Fal:UseEmulator=true)");
    }
#endif

    private sealed class Validation(IHostEnvironment environment) : IValidateOptions<FalOptions>
    {
        public ValidateOptionsResult Validate(string? name, FalOptions options) =>
            options.UseEmulator && Refusal(environment) is { } refusal ? ValidateOptionsResult.Fail(refusal) : ValidateOptionsResult.Success;
    }
}
