using System.Security.Cryptography;
using System.Text;
using SkiaSharp;

namespace FalEmulator;

internal sealed record GeneratedImage(byte[] Bytes, string ContentType, string Extension, int Width, int Height);

/// <summary>Paints real, decodable images that depend only on the prompt: a gradient with shapes, or noise.</summary>
internal static class ImageGenerator
{
    public static (int Width, int Height) Dimensions(string aspectRatio, int longSide, (int Width, int Height)? autoSize)
    {
        var (w, h) = aspectRatio == "auto" ? autoSize ?? (1, 1) : ParseRatio(aspectRatio);
        return w >= h
            ? (longSide, Math.Max(1, (int)Math.Round(longSide * (double)h / w)))
            : (Math.Max(1, (int)Math.Round(longSide * (double)w / h)), longSide);
    }

    public static GeneratedImage Generate(string prompt, int index, string format, int width, int height, bool noise, SKBitmap? input)
    {
        var seed = BitConverter.ToInt32(SHA256.HashData(Encoding.UTF8.GetBytes($"{prompt}#{index}")), 0);
        var random = new Random(seed);
        using var image = noise ? Noise(random, width, height) : Picture(random, width, height, input);
        var (skFormat, contentType, extension) = format switch
        {
            "jpeg" => (SKEncodedImageFormat.Jpeg, "image/jpeg", "jpeg"),
            "webp" => (SKEncodedImageFormat.Webp, "image/webp", "webp"),
            _ => (SKEncodedImageFormat.Png, "image/png", "png"),
        };
        using var data = image.Encode(skFormat, 90)
            ?? throw new InvalidOperationException($"Skia could not encode {format}.");
        return new GeneratedImage(data.ToArray(), contentType, extension, width, height);
    }

    private static (int, int) ParseRatio(string ratio)
    {
        var parts = ratio.Split(':');
        return (int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture),
            int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
    }

    private static SKImage Noise(Random random, int width, int height)
    {
        var pixels = new byte[width * height * 4];
        random.NextBytes(pixels);
        for (var i = 3; i < pixels.Length; i += 4)
        {
            pixels[i] = 255;
        }

        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        return SKImage.FromPixelCopy(info, pixels, width * 4);
    }

    private static SKImage Picture(Random random, int width, int height, SKBitmap? input)
    {
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var surface = SKSurface.Create(info);
        var canvas = surface.Canvas;

        using (var background = new SKPaint())
        {
            background.Shader = SKShader.CreateLinearGradient(
                new SKPoint(0, 0), new SKPoint(width, height),
                [RandomColor(random, 255), RandomColor(random, 255)], SKShaderTileMode.Clamp);
            canvas.DrawRect(0, 0, width, height, background);
        }

        if (input is not null)
        {
            // An edit keeps its source visible under the new shapes.
            using var faded = new SKPaint { Color = SKColors.White.WithAlpha(200) };
            using var source = SKImage.FromBitmap(input);
            canvas.DrawImage(source, new SKRect(0, 0, width, height), new SKSamplingOptions(SKFilterMode.Linear), faded);
        }

        using var paint = new SKPaint { IsAntialias = true };
        var shapes = random.Next(4, 9);
        for (var i = 0; i < shapes; i++)
        {
            paint.Color = RandomColor(random, (byte)random.Next(90, 200));
            var x = (float)(random.NextDouble() * width);
            var y = (float)(random.NextDouble() * height);
            var size = (float)(random.NextDouble() * Math.Min(width, height) / 3 + 2);
            if (random.Next(2) == 0)
            {
                canvas.DrawCircle(x, y, size, paint);
            }
            else
            {
                canvas.DrawRect(x - size, y - size / 2, size * 2, size, paint);
            }
        }

        return surface.Snapshot();
    }

    private static SKColor RandomColor(Random random, byte alpha) =>
        new((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256), alpha);
}
