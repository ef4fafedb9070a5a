using SkiaSharp;

namespace FalEmulator.Tests;

internal static class TestImages
{
    public static byte[] Png(int width, int height)
    {
        using var bitmap = new SKBitmap(width, height);
        bitmap.Erase(SKColors.CornflowerBlue);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    public static string PngDataUri(int width, int height) => "data:image/png;base64," + Convert.ToBase64String(Png(width, height));

    /// <summary>Decodes with Skia and reports the container format and size.</summary>
    public static (SKEncodedImageFormat Format, int Width, int Height) Decode(byte[] bytes)
    {
        using var codec = SKCodec.Create(new MemoryStream(bytes));
        Assert.NotNull(codec);
        using var bitmap = SKBitmap.Decode(bytes);
        Assert.NotNull(bitmap);
        return (codec.EncodedFormat, bitmap.Width, bitmap.Height);
    }

    public static bool HasMagic(byte[] bytes, string format) => format switch
    {
        "png" => bytes.AsSpan().StartsWith((byte[])[0x89, (byte)'P', (byte)'N', (byte)'G']),
        "jpeg" => bytes.AsSpan().StartsWith((byte[])[0xFF, 0xD8, 0xFF]),
        "webp" => bytes.AsSpan(0, 4).SequenceEqual("RIFF"u8) && bytes.AsSpan(8, 4).SequenceEqual("WEBP"u8),
        _ => false,
    };
}
