using System.Globalization;

namespace Gateway.Generations;

/// <summary><c>Prefer: wait=N</c> (RFC 7240): how long the caller is willing to wait, capped by configuration.</summary>
internal static class PreferWait
{
    public static TimeSpan? Requested(HttpRequest request, GenerationOptions options)
    {
        foreach (var value in request.Headers["Prefer"])
        {
            foreach (var preference in (value ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var parts = preference.Split('=', 2, StringSplitOptions.TrimEntries);
                if (parts.Length == 2 && parts[0].Equals("wait", StringComparison.OrdinalIgnoreCase)
                    && int.TryParse(parts[1].Trim('"'), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
                {
                    return TimeSpan.FromSeconds(Math.Min(seconds, options.MaxWaitSeconds));
                }
            }
        }

        return null;
    }

    public static void Applied(HttpResponse response, TimeSpan wait) =>
        response.Headers["Preference-Applied"] = "wait=" + ((int)wait.TotalSeconds).ToString(CultureInfo.InvariantCulture);
}
