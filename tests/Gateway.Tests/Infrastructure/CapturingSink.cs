using System.Collections.Concurrent;
using Serilog.Core;
using Serilog.Events;

namespace Gateway.Tests.Infrastructure;

/// <summary>
/// Every log event a gateway writes, for the tests to search: the template, the rendered text, every
/// property both as rendered and as its raw values (recursively through sequences, structures and
/// dictionaries, as a JSON sink would write them), and the exception.
/// </summary>
public sealed class CapturingSink : ILogEventSink
{
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly ConcurrentQueue<LogEvent> _events = new();

    public void Emit(LogEvent logEvent)
    {
        _events.Enqueue(logEvent);
        using var writer = new StringWriter();
        writer.Write(logEvent.RenderMessage());
        writer.Write(" | " + logEvent.MessageTemplate.Text + " |");
        foreach (var (name, value) in logEvent.Properties)
        {
            writer.Write($" {name}={value}");
            foreach (var (_, raw) in RawValues(name, value))
            {
                writer.Write(" " + raw);
            }
        }

        if (logEvent.Exception is not null)
        {
            writer.Write(" " + logEvent.Exception);
        }

        _lines.Enqueue(writer.ToString());
    }

    public string Text => string.Join("\n", _lines);

    public IReadOnlyCollection<LogEvent> Events => _events;

    /// <summary>Where <paramref name="secret"/> shows in the captured events: one line per event and place.</summary>
    public IEnumerable<string> Occurrences(string secret)
    {
        foreach (var logEvent in _events)
        {
            var source = logEvent.Properties.TryGetValue("SourceContext", out var context) ? context.ToString() : "?";
            var where = $"{logEvent.Level} {source} \"{logEvent.MessageTemplate.Text}\"";
            if (logEvent.MessageTemplate.Text.Contains(secret, StringComparison.Ordinal) || logEvent.RenderMessage().Contains(secret, StringComparison.Ordinal))
            {
                yield return $"{where}: the message";
            }

            foreach (var (name, value) in logEvent.Properties)
            {
                if (value.ToString().Contains(secret, StringComparison.Ordinal))
                {
                    yield return $"{where}: property {name} (rendered)";
                }

                foreach (var (path, raw) in RawValues(name, value))
                {
                    if (raw.Contains(secret, StringComparison.Ordinal))
                    {
                        yield return $"{where}: property {path}";
                    }
                }
            }

            if (logEvent.Exception?.ToString().Contains(secret, StringComparison.Ordinal) == true)
            {
                yield return $"{where}: the exception";
            }
        }
    }

    /// <summary>Every scalar under a property (and every dictionary key and type tag), with its path.</summary>
    private static IEnumerable<(string Path, string Value)> RawValues(string path, LogEventPropertyValue value)
    {
        switch (value)
        {
            case ScalarValue scalar:
                yield return (path, Convert.ToString(scalar.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "");
                break;
            case SequenceValue sequence:
                for (var i = 0; i < sequence.Elements.Count; i++)
                {
                    foreach (var raw in RawValues($"{path}[{i}]", sequence.Elements[i]))
                    {
                        yield return raw;
                    }
                }

                break;
            case StructureValue structure:
                yield return ($"{path}.$type", structure.TypeTag ?? "");
                foreach (var property in structure.Properties)
                {
                    yield return ($"{path}.$name", property.Name);
                    foreach (var raw in RawValues($"{path}.{property.Name}", property.Value))
                    {
                        yield return raw;
                    }
                }

                break;
            case DictionaryValue dictionary:
                foreach (var (key, element) in dictionary.Elements)
                {
                    var name = Convert.ToString(key.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "";
                    yield return ($"{path}.$key", name);
                    foreach (var raw in RawValues($"{path}[{name}]", element))
                    {
                        yield return raw;
                    }
                }

                break;
        }
    }
}
