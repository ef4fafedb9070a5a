using System.ComponentModel.DataAnnotations;
using Gateway.Generations;

namespace Gateway.Tests.Unit;

/// <summary>What an entry of image_urls may be, and the exact reason when it may not.</summary>
public sealed class ImageUrlRulesTests
{
    private const int Limit = 10 * 1024 * 1024;

    private static readonly byte[] Png = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, (byte)'I', (byte)'H', (byte)'D', (byte)'R'];
    private static readonly byte[] Jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, (byte)'J', (byte)'F', (byte)'I', (byte)'F', 0, 1, 1, 0];
    private static readonly byte[] WebP = [.. "RIFF"u8, 36, 0, 0, 0, .. "WEBPVP8 "u8];
    private static readonly byte[] Gif = [.. "GIF89a"u8, 1, 0, 1, 0, 0, 0];
    private static readonly byte[] Gif87 = [.. "GIF87a"u8, 1, 0, 1, 0, 0, 0];

    private static string DataUri(string mediaType, byte[] bytes) => $"data:{mediaType};base64,{Convert.ToBase64String(bytes)}";

    [Theory]
    [InlineData("https://v3.fal.media/files/example/input.png")]
    [InlineData("http://example.com/a.png")]
    [InlineData("HTTPS://EXAMPLE.COM/A.PNG")]
    [InlineData("https://example.com/a%20b.png?x=1&y=%0A")]
    [InlineData("https://example.com:8443/a.png")]
    public void Check_HttpOrHttpsUrl_IsAccepted(string url) => Assert.Null(ImageUrlRules.Check(url, Limit));

    public static TheoryData<string> AcceptedDataUris => new()
    {
        DataUri("image/png", Png),
        DataUri("image/jpeg", Jpeg),
        DataUri("image/jpg", Jpeg),
        DataUri("image/webp", WebP),
        DataUri("image/gif", Gif),
        DataUri("image/gif", Gif87),
        "DATA:IMAGE/PNG;BASE64," + Convert.ToBase64String(Png),
        DataUri("image/png;name=input.png", Png),
        DataUri("image/jpeg", [0xFF, 0xD8, 0xFF]),
    };

    [Theory]
    [MemberData(nameof(AcceptedDataUris))]
    public void Check_ImageDataUriOfItsDeclaredType_IsAccepted(string uri) => Assert.Null(ImageUrlRules.Check(uri, Limit));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("\t\n")]
    public void Check_EmptyEntry_IsRefused(string? value) =>
        Assert.Equal("must be an http(s) URL or an image data URI, not empty.", ImageUrlRules.Check(value, Limit));

    [Theory]
    [InlineData(" https://example.com/a.png")]
    [InlineData("https://example.com/a.png ")]
    [InlineData("https://example.com/a b.png")]
    [InlineData("https://example.com/a.png\r\nX-Injected: 1")]
    [InlineData("https://example.com/a.png\n")]
    [InlineData("https://example.com/\ta.png")]
    [InlineData("https://example.com/a\u0000.png")]
    [InlineData("https://example.com/a\u007f.png")]
    [InlineData("https://example.com/a\u0085.png")]
    [InlineData("https://example.com/a\u00a0.png")]
    [InlineData("https://example.com/a\u2028.png")]
    [InlineData("data:image/png;base64,iVBORw0K GgoAAAAN")]
    [InlineData("data:image/png;base64,iVBORw0K\nGgoAAAAN")]
    public void Check_WhitespaceOrControlCharacters_AreRefused(string value) =>
        Assert.Equal("must not contain whitespace or control characters (percent-encode them in a URL).", ImageUrlRules.Check(value, Limit));

    [Theory]
    [InlineData("ftp://example.com/a.png")]
    [InlineData("file:///etc/passwd")]
    [InlineData("javascript:alert(1)")]
    [InlineData("blob:https://example.com/1234")]
    [InlineData("gs://bucket/a.png")]
    [InlineData("/relative/a.png")]
    [InlineData("example.com/a.png")]
    [InlineData("//example.com/a.png")]
    [InlineData("https://")]
    public void Check_OtherSchemesAndRelativeUrls_AreRefused(string value) =>
        Assert.Equal("must be an absolute http(s) URL or an image data URI.", ImageUrlRules.Check(value, Limit));

    [Theory]
    [InlineData("https://user:secret@example.com/a.png")]
    [InlineData("https://user@example.com/a.png")]
    public void Check_UrlWithCredentials_IsRefused(string value) =>
        Assert.Equal("must not carry credentials (user:password@).", ImageUrlRules.Check(value, Limit));

    [Theory]
    [InlineData("data:image/png,abc")]
    [InlineData("data:image/png;base64")]
    [InlineData("data:,iVBORw0KGgo=")]
    [InlineData("data:image/png;charset=utf-8,iVBORw0KGgo=")]
    public void Check_DataUriNotBase64_IsRefused(string value) =>
        Assert.Equal("a data URI must be base64 encoded: data:image/png;base64,….", ImageUrlRules.Check(value, Limit));

    [Theory]
    [InlineData("data:text/plain;base64,aGVsbG8=", "text/plain")]
    [InlineData("data:text/html;base64,PGgxPmhpPC9oMT4=", "text/html")]
    [InlineData("data:image/svg+xml;base64,PHN2Zy8+", "image/svg+xml")]
    [InlineData("data:image/bmp;base64,Qk0=", "image/bmp")]
    [InlineData("data:application/octet-stream;base64,iVBORw0KGgo=", "application/octet-stream")]
    [InlineData("data:;base64,iVBORw0KGgo=", "")]
    public void Check_DataUriOfANonImageType_IsRefusedNamingTheType(string value, string mediaType) =>
        Assert.Equal($"a data URI must hold an image (png, jpeg, webp or gif), not '{mediaType}'.", ImageUrlRules.Check(value, Limit));

    [Theory]
    [InlineData("data:image/png;base64,")]
    [InlineData("data:image/png;base64,!!!!")]
    [InlineData("data:image/png;base64,iVBORw0KGgo")]
    [InlineData("data:image/png;base64,iVBORw0KGgo==x")]
    [InlineData("data:image/png;base64,iVBO_w0-Ggo=")]
    public void Check_DataUriWithInvalidBase64_IsRefused(string value) =>
        Assert.Equal("the data URI's base64 payload is not valid base64.", ImageUrlRules.Check(value, Limit));

    public static TheoryData<string> NotImages => new()
    {
        DataUri("image/png", "hello, world! this is text"u8.ToArray()),
        DataUri("image/png", [0x89, (byte)'P', (byte)'N', (byte)'G', 0, 0, 0, 0, 0, 0, 0, 0]),
        DataUri("image/webp", [.. "RIFF"u8, 0, 0, 0, 0, .. "WAVEfmt "u8]),
        DataUri("image/gif", [.. "GIF88a"u8, 0, 0, 0, 0, 0, 0]),
        DataUri("image/jpeg", [0xFF, 0xD8]),
        DataUri("image/png", [.. "<svg xmlns=\"http://www.w3.org/2000/svg\"/>"u8]),
    };

    [Theory]
    [MemberData(nameof(NotImages))]
    public void Check_DataUriWhoseBytesAreNotAnImage_IsRefused(string value) =>
        Assert.Equal("the data URI's bytes are not a PNG, JPEG, WebP or GIF image.", ImageUrlRules.Check(value, Limit));

    public static TheoryData<string, string, string> Mismatches => new()
    {
        { DataUri("image/png", Jpeg), "image/png", "image/jpeg" },
        { DataUri("image/jpeg", Png), "image/jpeg", "image/png" },
        { DataUri("image/jpg", Png), "image/jpg", "image/png" },
        { DataUri("image/gif", WebP), "image/gif", "image/webp" },
        { DataUri("image/webp", Gif), "image/webp", "image/gif" },
        { DataUri("IMAGE/PNG", Gif), "image/png", "image/gif" },
    };

    [Theory]
    [MemberData(nameof(Mismatches))]
    public void Check_DataUriWhoseBytesAreAnotherType_IsRefusedNamingBoth(string value, string declared, string actual) =>
        Assert.Equal($"the data URI declares {declared} but its bytes are {actual}.", ImageUrlRules.Check(value, Limit));

    [Fact]
    public void Check_DataUriAtTheSizeLimit_IsAccepted_AndOneByteOver_IsRefusedWithBothSizes()
    {
        byte[] atLimit = [.. Png, .. new byte[1000 - Png.Length]];
        byte[] over = [.. atLimit, 0];

        Assert.Null(ImageUrlRules.Check(DataUri("image/png", atLimit), 1000));
        Assert.Equal("the data URI's image is 1001 bytes; the limit is 1000.", ImageUrlRules.Check(DataUri("image/png", over), 1000));
    }

    [Fact]
    public void Check_OversizeDataUri_IsRefusedBeforeItsBytesAreLookedAt()
    {
        // Not an image at all, but too large: the size is the reason given.
        Assert.Equal("the data URI's image is 2048 bytes; the limit is 1024.", ImageUrlRules.Check(DataUri("image/png", new byte[2048]), 1024));
    }

    [Fact]
    public void EditRequest_BadImageUrl_IsRefusedNamingTheEntry()
    {
        var request = new EditRequest
        {
            Prompt = "make it blue",
            ImageUrls = [DataUri("image/png", Jpeg)],
        };

        var results = new List<ValidationResult>();
        Validator.TryValidateObject(request, new ValidationContext(request), results, validateAllProperties: true);

        var result = Assert.Single(results);
        Assert.Equal("the data URI declares image/png but its bytes are image/jpeg.", result.ErrorMessage);
        Assert.Equal(["image_urls[0]"], result.MemberNames);
    }

    [Fact]
    public void EditRequest_TwoImageUrls_AreRefusedAsOneTooMany_AndEachBadEntryIsNamed()
    {
        var request = new EditRequest
        {
            Prompt = "make it blue",
            ImageUrls = ["https://example.com/a.png", "ftp://example.com/b.png"],
        };

        var results = new List<ValidationResult>();
        Validator.TryValidateObject(request, new ValidationContext(request), results, validateAllProperties: true);

        Assert.Equal(
            [
                ("image_urls", "image_urls must hold exactly one image (it has 2): fal's edit model takes one."),
                ("image_urls[1]", "must be an absolute http(s) URL or an image data URI."),
            ],
            results.Select(r => (r.MemberNames.Single(), r.ErrorMessage)));
    }
}
