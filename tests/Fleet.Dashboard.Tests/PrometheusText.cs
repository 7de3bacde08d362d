using System.Globalization;
using System.Text;

namespace Fleet.Dashboard.Tests;

/// <summary>
/// Reads a <c>/metrics</c> page (Prometheus text format, as OpenTelemetry's exporter writes it) into samples keyed
/// <c>name</c> or <c>name{a="x",b="y"}</c>: labels sorted by name, OpenTelemetry's <c>otel_scope_*</c> labels left out.
/// </summary>
internal static class PrometheusText
{
    public static Dictionary<string, double> Parse(string text)
    {
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var brace = line.IndexOf('{', StringComparison.Ordinal);
            var space = line.IndexOf(' ', brace < 0 ? 0 : line.LastIndexOf('}'));
            var name = brace < 0 ? line[..space] : line[..brace];
            var labels = brace < 0 ? [] : Labels(line[(brace + 1)..line.LastIndexOf('}')]);
            var kept = labels.Where(l => !l.Key.StartsWith("otel_scope_", StringComparison.Ordinal)).OrderBy(l => l.Key, StringComparer.Ordinal).ToList();
            var key = kept.Count == 0 ? name : $"{name}{{{string.Join(',', kept.Select(l => $"{l.Key}=\"{l.Value}\""))}}}";
            // The value, then an optional timestamp.
            var value = line[(space + 1)..].Split(' ')[0];
            result[key] = value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                _ => double.Parse(value, CultureInfo.InvariantCulture),
            };
        }

        return result;
    }

    private static List<KeyValuePair<string, string>> Labels(string text)
    {
        var labels = new List<KeyValuePair<string, string>>();
        var i = 0;
        while (i < text.Length)
        {
            var eq = text.IndexOf('=', i);
            var name = text[i..eq].Trim(',', ' ');
            var value = new StringBuilder();
            var j = eq + 2; // past ="
            for (; text[j] != '"'; j++)
            {
                if (text[j] == '\\')
                {
                    j++;
                    value.Append(text[j] == 'n' ? '\n' : text[j]);
                }
                else
                {
                    value.Append(text[j]);
                }
            }

            labels.Add(new(name, value.ToString()));
            i = j + 1;
        }

        return labels;
    }
}

/// <summary>Reads a contributor's observable instruments once, as a scrape would (keys as in <see cref="PrometheusText"/>).</summary>
internal static class MeterReadings
{
    public static Dictionary<string, double> Collect(Fleet.Dashboard.Hosting.IMetricsContributor contributor)
    {
        using var meter = new System.Diagnostics.Metrics.Meter("Fleet.Tests." + Guid.NewGuid().ToString("N"));
        contributor.CreateInstruments(meter);
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, meter))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        void Record(System.Diagnostics.Metrics.Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var labels = tags.ToArray().OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $"{t.Key}=\"{t.Value}\"").ToList();
            result[labels.Count == 0 ? instrument.Name : $"{instrument.Name}{{{string.Join(',', labels)}}}"] = value;
        }

        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<int>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        listener.Start();
        listener.RecordObservableInstruments();
        return result;
    }
}
