namespace FalEmulator;

internal static class FaultKinds
{
    public const string Slow = "slow";
    public const string Drop = "drop";
    public const string ContentPolicy = "content_policy";
    public const string Duplicate = "duplicate";
    public const string Corrupt = "corrupt";
    public const string Delay = "delay";

    private static readonly HashSet<string> CallKinds =
        ["401", "402", "422", ContentPolicy, "429", "500", "502", "503", "504", Slow, Drop];

    private static readonly HashSet<string> WebhookKinds = [Drop, Duplicate, Corrupt, Delay];

    public static bool IsKnown(FalOperation operation, string kind) =>
        operation == FalOperation.Webhook ? WebhookKinds.Contains(kind) : CallKinds.Contains(kind);
}

/// <summary>A fault a prompt asked for with [[fault:KIND@op*N]]; fires N times (-1 = every time) for its job.</summary>
internal sealed class PromptFault(string kind, IReadOnlyList<FalOperation> operations, int count)
{
    private int _remaining = count;

    public string Kind { get; } = kind;

    public IReadOnlyList<FalOperation> Operations { get; } = operations;

    public bool AppliesTo(FalOperation operation) => Operations.Contains(operation);

    public bool TryFire()
    {
        while (true)
        {
            var current = Volatile.Read(ref _remaining);
            if (current == 0)
            {
                return false;
            }

            if (current < 0 || Interlocked.CompareExchange(ref _remaining, current - 1, current) == current)
            {
                return true;
            }
        }
    }
}

/// <summary>The directives a prompt carries: faults, [[run:MS]] and [[noise]].</summary>
internal sealed partial record PromptDirectives(IReadOnlyList<PromptFault> Faults, TimeSpan? RunTime, bool Noise)
{
    public static readonly PromptDirectives None = new([], null, false);

    public static PromptDirectives Parse(string? prompt)
    {
        if (string.IsNullOrEmpty(prompt) || !prompt.Contains("[[", StringComparison.Ordinal))
        {
            return None;
        }

        var faults = new List<PromptFault>();
        foreach (System.Text.RegularExpressions.Match m in FaultPattern().Matches(prompt))
        {
            var kind = m.Groups["kind"].Value.ToLowerInvariant();
            var op = m.Groups["op"].Success ? m.Groups["op"].Value.ToLowerInvariant() : "submit";
            var count = m.Groups["count"].Success ? int.Parse(m.Groups["count"].Value, System.Globalization.CultureInfo.InvariantCulture) : -1;
            var operations = OperationsFor(op);
            if (operations.Count > 0 && operations.All(o => FaultKinds.IsKnown(o, kind)))
            {
                faults.Add(new PromptFault(kind, operations, count));
            }
        }

        TimeSpan? runTime = null;
        var run = RunPattern().Match(prompt);
        if (run.Success && int.TryParse(run.Groups["ms"].Value, System.Globalization.CultureInfo.InvariantCulture, out var ms))
        {
            runTime = TimeSpan.FromMilliseconds(ms);
        }

        return new PromptDirectives(faults, runTime, prompt.Contains("[[noise]]", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>The kind of the next fault this prompt fires on a call of <paramref name="operation"/>, if any.</summary>
    public string? Take(FalOperation operation) =>
        Faults.FirstOrDefault(f => f.AppliesTo(operation) && !IsOutcome(f) && f.TryFire())?.Kind;

    /// <summary>A 422 or content_policy fault at result is the job's outcome: it runs, then fails.</summary>
    public string? OutcomeFault => Faults.FirstOrDefault(IsOutcome)?.Kind;

    private static bool IsOutcome(PromptFault fault) =>
        fault.AppliesTo(FalOperation.Result) && fault.Kind is "422" or FaultKinds.ContentPolicy;

    private static List<FalOperation> OperationsFor(string op) => op switch
    {
        // the synchronous run endpoint is a submit that answers at once, so submit faults apply there too
        "submit" => [FalOperation.Submit, FalOperation.Run],
        "status" => [FalOperation.Status, FalOperation.StatusStream],
        "stream" => [FalOperation.StatusStream],
        "result" => [FalOperation.Result],
        "cancel" => [FalOperation.Cancel],
        "webhook" => [FalOperation.Webhook],
        "run" => [FalOperation.Run],
        "download" => [FalOperation.Download],
        _ => [],
    };

    [System.Text.RegularExpressions.GeneratedRegex(@"\[\[fault:(?<kind>[a-z0-9_]+)(@(?<op>[a-z]+))?(\*(?<count>\d+))?\]\]", System.Text.RegularExpressions.RegexOptions.IgnoreCase)]
    private static partial System.Text.RegularExpressions.Regex FaultPattern();

    [System.Text.RegularExpressions.GeneratedRegex(@"\[\[run:(?<ms>\d+)\]\]", System.Text.RegularExpressions.RegexOptions.IgnoreCase)]
    private static partial System.Text.RegularExpressions.Regex RunPattern();
}
