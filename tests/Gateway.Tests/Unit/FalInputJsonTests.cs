using System.Text;
using System.Text.Json;
using Gateway.Generations;

namespace Gateway.Tests.Unit;

/// <summary>The body sent to fal: the same JSON, without escapes JSON does not need (issue 9, point 10).</summary>
public sealed class FalInputJsonTests
{
    [Fact]
    public void ADataUri_GoesToFalAsItIs_WithoutTheDefaultEncodersEscapes()
    {
        var dataUri = "data:image/png;base64," + Convert.ToBase64String(Enumerable.Range(0, 3000).Select(i => (byte)(i * 7)).ToArray());
        Assert.Contains("+", dataUri, StringComparison.Ordinal);
        var input = new FalImageInput("a \"quoted\" <prompt> & 'more' — ünïcode", [dataUri], 2, "16:9", null, null);

        var json = JsonSerializer.SerializeToUtf8Bytes(input, FalInputJsonContext.Wire.FalImageInput);

        var text = Encoding.UTF8.GetString(json);
        Assert.Contains(dataUri, text, StringComparison.Ordinal);
        Assert.DoesNotContain("\\u002B", text, StringComparison.Ordinal);
        Assert.Contains("\"prompt\":\"a \\\"quoted\\\" <prompt> & 'more' — ünïcode\"", text, StringComparison.Ordinal);
        Assert.DoesNotContain("output_format", text, StringComparison.Ordinal);

        // The same value as the default encoder's output, read back.
        var read = JsonDocument.Parse(json).RootElement;
        var expected = JsonDocument.Parse(JsonSerializer.SerializeToUtf8Bytes(input, FalInputJsonContext.Default.FalImageInput)).RootElement;
        Assert.Equal(expected.GetProperty("prompt").GetString(), read.GetProperty("prompt").GetString());
        Assert.Equal(dataUri, read.GetProperty("image_urls")[0].GetString());
        Assert.Equal(2, read.GetProperty("num_images").GetInt32());
        Assert.Equal("16:9", read.GetProperty("aspect_ratio").GetString());
    }
}
