using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace Gateway.Generations;

/// <summary>
/// Text a person could read: at least one visible character (not only whitespace, control or format characters such
/// as U+200B), and no control characters but tab, CR and LF. Null is left to <see cref="RequiredAttribute"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field | AttributeTargets.Parameter)]
internal sealed class VisibleTextAttribute : ValidationAttribute
{
    public override bool IsValid(object? value) =>
        value is not string text
        || (!text.Any(c => char.IsControl(c) && c is not ('\t' or '\r' or '\n')) && text.Any(IsVisible));

    private static bool IsVisible(char c) =>
        !char.IsWhiteSpace(c) && !char.IsControl(c) && CharUnicodeInfo.GetUnicodeCategory(c) != UnicodeCategory.Format;
}
