using System.Text.RegularExpressions;

namespace Deploy.Tests;

/// <summary>A Dockerfile read into stages and instructions (continuations joined, comments dropped).</summary>
internal sealed partial class Dockerfile
{
    private Dockerfile(IReadOnlyList<Stage> stages) => Stages = stages;

    public IReadOnlyList<Stage> Stages { get; }

    /// <summary>The stage `docker build` produces without --target.</summary>
    public Stage Default => Stages[^1];

    public Stage Named(string name)
    {
        var stage = Stages.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase));
        Assert.True(stage is not null, $"The Dockerfile has no stage named '{name}'; stages: [{string.Join(", ", Stages.Select(s => s.Name))}].");
        return stage;
    }

    public static Dockerfile Parse(string text)
    {
        var stages = new List<Stage>();
        var logical = new List<string>();
        var current = "";
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.TrimStart().StartsWith('#'))
            {
                continue;
            }

            if (line.EndsWith('\\'))
            {
                current += line[..^1] + " ";
                continue;
            }

            current += line;
            if (current.Trim().Length > 0)
            {
                logical.Add(current.Trim());
            }

            current = "";
        }

        foreach (var line in logical)
        {
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            var keyword = (space < 0 ? line : line[..space]).ToUpperInvariant();
            var arguments = space < 0 ? "" : line[(space + 1)..].Trim();
            if (keyword == "FROM")
            {
                var match = FromLine().Match(arguments);
                Assert.True(match.Success, $"Cannot read the Dockerfile line 'FROM {arguments}'.");
                stages.Add(new Stage(match.Groups["image"].Value, match.Groups["name"].Success ? match.Groups["name"].Value : null));
            }
            else
            {
                Assert.True(stages.Count > 0, $"The Dockerfile has '{keyword}' before any FROM.");
                stages[^1].Instructions.Add(new Instruction(keyword, arguments));
            }
        }

        Assert.True(stages.Count > 0, "The Dockerfile has no FROM.");
        return new Dockerfile(stages);
    }

    [GeneratedRegex(@"^(?:--platform=\S+\s+)?(?<image>\S+)(?:\s+AS\s+(?<name>\S+))?$", RegexOptions.IgnoreCase)]
    private static partial Regex FromLine();

    internal sealed record Instruction(string Keyword, string Arguments)
    {
        /// <summary>Flags (--from=…, --chown=…) and operands of COPY/ADD, in order.</summary>
        public (IReadOnlyDictionary<string, string> Flags, IReadOnlyList<string> Operands) Words()
        {
            var flags = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            var operands = new List<string>();
            var words = Arguments.StartsWith('[')
                ? Arguments.Trim('[', ']').Split(',').Select(w => w.Trim().Trim('"'))
                : Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            foreach (var word in words)
            {
                if (word.StartsWith("--", StringComparison.Ordinal))
                {
                    var eq = word.IndexOf('=', StringComparison.Ordinal);
                    flags[eq < 0 ? word[2..] : word[2..eq]] = eq < 0 ? "" : word[(eq + 1)..];
                }
                else
                {
                    operands.Add(word);
                }
            }

            return (flags, operands);
        }
    }

    internal sealed class Stage(string image, string? name)
    {
        public string Image { get; } = image;

        public string? Name { get; } = name;

        public List<Instruction> Instructions { get; } = [];

        public IEnumerable<Instruction> All(string keyword) =>
            Instructions.Where(i => i.Keyword == keyword);

        public Instruction? Last(string keyword) => All(keyword).LastOrDefault();
    }
}

/// <summary>A .dockerignore, matched the way the Docker CLI does: last matching rule wins, `!` re-includes.</summary>
internal sealed class DockerIgnore(IReadOnlyList<(bool Exclude, Regex Pattern)> rules)
{
    public static DockerIgnore Parse(string text) => new(
    [
        .. text.Split('\n')
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.StartsWith('!') ? (false, l[1..]) : (true, l))
            .Select(r => (r.Item1, ToRegex(r.Item2.Trim('/')))),
    ]);

    /// <summary>Whether the path (relative to the context, with /) or one of its parent folders is excluded.</summary>
    public bool Excludes(string path)
    {
        var parts = path.Trim('/').Split('/');
        for (var i = 1; i <= parts.Length; i++)
        {
            var prefix = string.Join('/', parts[..i]);
            var excluded = false;
            foreach (var (exclude, pattern) in rules)
            {
                if (pattern.IsMatch(prefix))
                {
                    excluded = exclude;
                }
            }

            if (excluded)
            {
                return true;
            }
        }

        return false;
    }

    private static Regex ToRegex(string pattern)
    {
        var regex = Regex.Escape(pattern)
            .Replace(@"\*\*/", "(.*/)?", StringComparison.Ordinal)
            .Replace(@"\*\*", ".*", StringComparison.Ordinal)
            .Replace(@"\*", "[^/]*", StringComparison.Ordinal)
            .Replace(@"\?", "[^/]", StringComparison.Ordinal);
        return new Regex($"^{regex}$", RegexOptions.CultureInvariant);
    }
}
