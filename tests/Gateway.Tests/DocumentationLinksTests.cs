using System.Text.RegularExpressions;
using Gateway.Tests.Process;

namespace Gateway.Tests;

/// <summary>
/// The contract lives in the repository: every link of its Markdown (README, docs/, clients/, tests/, deploy/) points at
/// a file that exists inside it, or at a gateway running on this machine, never out of the clone (../shared/… was).
/// </summary>
public sealed partial class DocumentationLinksTests
{
    private static readonly string[] Skipped = ["node_modules", "bin", "obj", "TestResults", ".git"];

    [Fact]
    public void EveryMarkdownLink_StaysInsideTheRepository()
    {
        var root = Path.GetFullPath(ProcessGateway.RepoRoot);
        var files = Directory.EnumerateFiles(root, "*.md", SearchOption.AllDirectories)
            .Where(f => !Path.GetRelativePath(root, f).Split(Path.DirectorySeparatorChar).Any(Skipped.Contains))
            .ToList();
        Assert.Contains(files, f => Path.GetRelativePath(root, f) == "README.md");

        var broken = new List<string>();
        var checkedLinks = 0;
        foreach (var file in files)
        {
            var text = InlineCode().Replace(FencedCode().Replace(File.ReadAllText(file), ""), "");
            var targets = InlineLink().Matches(text).Select(m => m.Groups[1].Value)
                .Concat(ReferenceLink().Matches(text).Select(m => m.Groups[1].Value))
                .Concat(AutoLink().Matches(text).Select(m => m.Groups[1].Value));
            foreach (var target in targets)
            {
                checkedLinks++;
                if (Problem(root, file, target) is { } problem)
                {
                    broken.Add($"{Path.GetRelativePath(root, file)}: {target}: {problem}");
                }
            }
        }

        Assert.True(checkedLinks > 0, "no link was found: the check would prove nothing");
        Assert.True(broken.Count == 0, "Links that leave the repository or point at nothing:\n" + string.Join("\n", broken));
    }

    private static string? Problem(string root, string file, string target)
    {
        if (target.StartsWith('#'))
        {
            return null;
        }

        if (Uri.TryCreate(target, UriKind.Absolute, out var absolute) && absolute.Scheme.Length > 1)
        {
            return absolute.Scheme is "http" or "https" && absolute.IsLoopback ? null : "an address outside the repository";
        }

        var path = Uri.UnescapeDataString(target.Split('#')[0]);
        var resolved = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(file)!, path));
        if (!resolved.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            return "outside the repository";
        }

        return File.Exists(resolved) || Directory.Exists(resolved) ? null : "no such file in the repository";
    }

    [GeneratedRegex(@"^(```|~~~).*?^\1", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex FencedCode();

    [GeneratedRegex(@"`[^`\n]*`")]
    private static partial Regex InlineCode();

    [GeneratedRegex(@"\]\(\s*<?([^)\s>]+)>?(?:\s+""[^""]*"")?\s*\)")]
    private static partial Regex InlineLink();

    [GeneratedRegex(@"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", RegexOptions.Multiline)]
    private static partial Regex ReferenceLink();

    [GeneratedRegex(@"<([a-zA-Z][a-zA-Z0-9+.-]*://[^>\s]+)>")]
    private static partial Regex AutoLink();
}
