using System.Buffers;
using System.Text;
using System.Text.Json;
using Fleet.Ingest.Events;

namespace Fleet.Ingest.Hfp;

/// <summary>
/// Reads HFP payload fields exported as CSV columns (a header row naming the fields, e.g. <c>desi,dir,oper,veh,tst,...</c>;
/// no topic), one message a row, through the same payload rules as <see cref="HfpParser"/>.
/// </summary>
/// <remarks>
/// <para>Columns are matched by header name; columns that are not HFP fields are ignored, and their order does not
/// matter. An empty cell is an absent field. Ids written as floats by a data frame export (<c>1363401.0</c>) are
/// read as integers. The event type is <c>VP</c> unless an <c>event_type</c> column says otherwise. The vehicle id is
/// built from <c>oper</c>/<c>veh</c>; the receive time is the event time.</para>
/// <para>Quoted cells (RFC 4180) are supported. Not thread-safe.</para>
/// </remarks>
public sealed class HfpCsvReader : IDisposable
{
    private static readonly HashSet<string> s_fields = new(StringComparer.Ordinal)
    {
        "desi", "dir", "oper", "veh", "tst", "tsi", "spd", "hdg", "lat", "long", "acc", "dl", "odo", "drst", "oday", "jrn",
        "line", "start", "loc", "stop", "route", "occu", "ttarr", "ttdep",
    };

    private static readonly HashSet<string> s_ids = new(StringComparer.Ordinal) { "stop", "route", "oper", "veh", "dir", "jrn", "line" };

    private readonly TextReader _reader;
    private readonly HfpParser _parser;
    private readonly ArrayBufferWriter<byte> _json = new(1024);
    private string[] _header = [];
    private int _eventTypeColumn = -1;
    private long _lineNumber;

    /// <summary>Reads CSV text from <paramref name="reader"/>, parsing with <paramref name="parser"/>.</summary>
    public HfpCsvReader(TextReader reader, HfpParser parser)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(parser);
        _reader = reader;
        _parser = parser;
    }

    /// <summary>Opens a CSV file (UTF-8).</summary>
    public static HfpCsvReader Open(string path, HfpParser parser) => new(new StreamReader(path, Encoding.UTF8), parser);

    /// <summary>The last line read (1-based; the header is line 1).</summary>
    public long LineNumber => _lineNumber;

    /// <summary>
    /// Reads every data row: each yields either a parsed event (<see cref="RejectReason.None"/>) or the reason it was
    /// rejected (already counted in the parser's rejections).
    /// </summary>
    /// <exception cref="InvalidDataException">The file has no header row.</exception>
    public IEnumerable<(RejectReason Reason, VehicleEvent Event)> ReadAll()
    {
        var headerLine = _reader.ReadLine() ?? throw new InvalidDataException("CSV has no header row.");
        _lineNumber = 1;
        _header = [.. SplitRow(headerLine).Select(h => h.Trim())];
        _eventTypeColumn = Array.IndexOf(_header, "event_type");

        string? row;
        while ((row = _reader.ReadLine()) is not null)
        {
            _lineNumber++;
            if (string.IsNullOrWhiteSpace(row))
            {
                continue;
            }

            var cells = SplitRow(row);
            if (cells.Count != _header.Length)
            {
                _parser.CountRejection(RejectReason.BadCsvRow, Encoding.UTF8.GetBytes($"csv line {_lineNumber}"), "column count differs from the header");
                yield return (RejectReason.BadCsvRow, default);
                continue;
            }

            BuildPayload(cells);
            if (_parser.TryParsePayload(_json.WrittenSpan, default, out var ev, out var reason))
            {
                ev.ReceiveTime = ev.EventTime;
                yield return (RejectReason.None, ev);
            }
            else
            {
                yield return (reason, default);
            }
        }
    }

    /// <inheritdoc />
    public void Dispose() => _reader.Dispose();

    private void BuildPayload(List<string> cells)
    {
        _json.ResetWrittenCount();
        using var w = new Utf8JsonWriter(_json);
        w.WriteStartObject();
        var type = _eventTypeColumn >= 0 && cells[_eventTypeColumn].Length > 0 ? cells[_eventTypeColumn].Trim().ToUpperInvariant() : "VP";
        w.WriteStartObject(type);
        for (var i = 0; i < _header.Length; i++)
        {
            var name = _header[i];
            if (!s_fields.Contains(name))
            {
                continue;
            }

            var value = cells[i].Trim();
            if (value.Length == 0)
            {
                w.WriteNull(name);
                continue;
            }

            if (s_ids.Contains(name) && value.EndsWith(".0", StringComparison.Ordinal))
            {
                value = value[..^2];
            }

            w.WriteString(name, value);
        }

        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static List<string> SplitRow(string row)
    {
        var cells = new List<string>();
        var cell = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < row.Length; i++)
        {
            var c = row[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < row.Length && row[i + 1] == '"')
                {
                    cell.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    cell.Append(c);
                }
            }
            else if (c == '"')
            {
                quoted = true;
            }
            else if (c == ',')
            {
                cells.Add(cell.ToString());
                cell.Clear();
            }
            else
            {
                cell.Append(c);
            }
        }

        cells.Add(cell.ToString());
        return cells;
    }
}
