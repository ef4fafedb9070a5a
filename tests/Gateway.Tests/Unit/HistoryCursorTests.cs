using System.Text;
using Gateway.Generations;

namespace Gateway.Tests.Unit;

/// <summary>The history cursor: the (created_at ms, id) of the last item of a page, as an opaque base64url token.</summary>
public sealed class HistoryCursorTests
{
    private static string Token(string plain) => Convert.ToBase64String(Encoding.UTF8.GetBytes(plain)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    [Theory]
    [InlineData(1795946400000L, "764cabcf-b745-4b3e-ae38-1200304cf45b")]
    [InlineData(0L, "a")]
    [InlineData(long.MaxValue, "id_with-chars")]
    [InlineData(1L, "id:with:colons")]
    [InlineData(1L, "é ünïcode")]
    public void EncodeThenDecode_GivesTheSameCursor(long score, string id)
    {
        var cursor = new HistoryCursor(score, id);

        Assert.True(HistoryCursor.TryDecode(cursor.Encode(), out var decoded));
        Assert.Equal(cursor, decoded);
    }

    [Fact]
    public void Encode_IsBase64UrlOfScoreColonId_WithoutPadding()
    {
        var token = new HistoryCursor(1795946400000, "764cabcf-b745-4b3e-ae38-1200304cf45b").Encode();

        Assert.Equal("MTc5NTk0NjQwMDAwMDo3NjRjYWJjZi1iNzQ1LTRiM2UtYWUzOC0xMjAwMzA0Y2Y0NWI", token);
        Assert.Equal(Token("1795946400000:764cabcf-b745-4b3e-ae38-1200304cf45b"), token);
        Assert.DoesNotContain('=', token);
    }

    [Fact]
    public void Encode_IsUrlSafe_EvenWhenBase64WouldUsePlusAndSlash()
    {
        // "?>" and "??" encode to '+' and '/' in standard base64.
        var token = new HistoryCursor(1, "?>??>").Encode();

        Assert.DoesNotContain('+', token);
        Assert.DoesNotContain('/', token);
        Assert.Equal(Uri.EscapeDataString(token), token);
    }

    public static TheoryData<string> Garbage => new()
    {
        "",
        "not a cursor",
        "!!!!",
        "%%%",
        "MTIz",                                   // "123": no colon
        Token(":id"),                             // no score
        Token("123:"),                            // no id
        Token("abc:id"),                          // score not a number
        Token("-5:id"),                           // negative score
        Token("+5:id"),                           // signed score
        Token(" 5:id"),                           // padded score
        Token("1.5:id"),                          // fractional score
        Token("99999999999999999999:id"),         // larger than a long
        "MTc5NTk0NjQwMDAwMDo3NjRj+WJjZi",         // standard base64's '+' is not base64url
        "MTc5NTk0NjQwMDAwMDo3NjRj/WJjZi",         // nor is '/'
        "A",                                      // one character cannot be base64
    };

    [Theory]
    [MemberData(nameof(Garbage))]
    public void TryDecode_GarbageOrTamperedToken_IsRefused(string text)
    {
        Assert.False(HistoryCursor.TryDecode(text, out var cursor));
        Assert.Equal(default, cursor);
    }

    [Fact]
    public void TryDecode_TruncatedToken_IsRefusedOrDecodesToAPrefix_NeverThrows()
    {
        var token = new HistoryCursor(1795946400000, "764cabcf").Encode();

        for (var length = 0; length < token.Length; length++)
        {
            if (HistoryCursor.TryDecode(token[..length], out var cursor))
            {
                Assert.Equal(1795946400000, cursor.Score);
                Assert.StartsWith(cursor.Id, "764cabcf", StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public void CompareNewestFirst_OrdersByTimeDescending_ThenIdDescending()
    {
        HistoryCursor[] cursors = [new(1, "b"), new(3, "a"), new(2, "a"), new(2, "c"), new(3, "b"), new(2, "b")];

        var ordered = cursors.Order(Comparer<HistoryCursor>.Create(HistoryCursor.CompareNewestFirst));

        Assert.Equal([new(3, "b"), new(3, "a"), new(2, "c"), new(2, "b"), new(2, "a"), new(1, "b")], ordered);
    }

    [Fact]
    public void CompareNewestFirst_SameCursor_IsEqual() =>
        Assert.Equal(0, HistoryCursor.CompareNewestFirst(new(5, "x"), new(5, "x")));
}
