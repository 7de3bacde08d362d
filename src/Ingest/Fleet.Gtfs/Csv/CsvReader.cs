using System.Text;

namespace Fleet.Gtfs.Csv;

/// <summary>
/// A small, fast RFC 4180 reader over an in-memory CSV text: quoted fields (with <c>""</c> escapes and
/// embedded line breaks), a UTF-8 byte order mark, and LF, CRLF or CR line endings.
/// </summary>
/// <remarks>
/// <para>Fields are exposed as <see cref="ReadOnlySpan{T}"/> slices of the text, so reading a row does not
/// allocate; a quoted field that contains an escaped quote is unescaped into a scratch buffer that the
/// next <see cref="Read"/> reuses. The first row is the header; names are trimmed of blanks (real feeds
/// write <c>" exact_times"</c>). Completely empty lines are skipped.</para>
/// <para>Not thread-safe: one reader per file and thread.</para>
/// </remarks>
public sealed class CsvReader
{
    private readonly string _text;
    private readonly string[] _header;
    private readonly Dictionary<string, int> _columns;
    private int _position;
    private int _nextLine = 1;
    private int[] _starts = new int[32];
    private int[] _lengths = new int[32];
    // Bit i set: field i lives in _scratch, not in _text (it had an escaped quote).
    private bool[] _inScratch = new bool[32];
    private char[] _scratch = new char[256];
    private int _scratchLength;

    /// <summary>Creates a reader over <paramref name="text"/> and reads its header row.</summary>
    /// <param name="fileName">Name used in error reports (for example <c>stop_times.txt</c>).</param>
    /// <param name="text">The whole file. A leading BOM is skipped.</param>
    public CsvReader(string fileName, string text)
    {
        ArgumentNullException.ThrowIfNull(fileName);
        ArgumentNullException.ThrowIfNull(text);
        FileName = fileName;
        _text = text;
        if (_text.Length > 0 && _text[0] == '\uFEFF')
        {
            _position = 1;
        }

        if (Read())
        {
            _header = new string[FieldCount];
            _columns = new Dictionary<string, int>(FieldCount, StringComparer.Ordinal);
            for (var i = 0; i < FieldCount; i++)
            {
                var name = this[i].Trim().ToString();
                _header[i] = name;
                _columns.TryAdd(name, i);
            }
        }
        else
        {
            _header = [];
            _columns = new Dictionary<string, int>(StringComparer.Ordinal);
        }
    }

    /// <summary>Creates a reader from raw bytes, decoded as UTF-8 (a BOM is skipped).</summary>
    public static CsvReader FromUtf8(string fileName, ReadOnlySpan<byte> bytes)
    {
        if (bytes.StartsWith(Encoding.UTF8.Preamble))
        {
            bytes = bytes[3..];
        }

        return new CsvReader(fileName, Encoding.UTF8.GetString(bytes));
    }

    /// <summary>The file name given at construction, for error reports.</summary>
    public string FileName { get; }

    /// <summary>The header row (trimmed column names).</summary>
    public IReadOnlyList<string> Header => _header;

    /// <summary>The 1-based physical line on which the current record starts (the header is line 1).</summary>
    public int LineNumber { get; private set; }

    /// <summary>Number of fields in the current record.</summary>
    public int FieldCount { get; private set; }

    /// <summary>The field at <paramref name="index"/> of the current record; empty when the row is shorter.</summary>
    public ReadOnlySpan<char> this[int index]
    {
        get
        {
            if (unchecked((uint)index) >= (uint)FieldCount)
            {
                return [];
            }

            return _inScratch[index]
                ? _scratch.AsSpan(_starts[index], _lengths[index])
                : _text.AsSpan(_starts[index], _lengths[index]);
        }
    }

    /// <summary>The column index of a header name, or -1 when the file has no such column.</summary>
    public int IndexOf(string column) => _columns.TryGetValue(column, out var i) ? i : -1;

    /// <summary>Advances to the next record. Returns false at the end of the text.</summary>
    public bool Read()
    {
        var text = _text.AsSpan();
        // Skip empty lines between records.
        while (_position < text.Length && (text[_position] == '\n' || text[_position] == '\r'))
        {
            if (text[_position] == '\r' && _position + 1 < text.Length && text[_position + 1] == '\n')
            {
                _position++;
            }

            _position++;
            _nextLine++;
        }

        if (_position >= text.Length)
        {
            FieldCount = 0;
            return false;
        }

        LineNumber = _nextLine;
        FieldCount = 0;
        _scratchLength = 0;
        var pos = _position;
        while (true)
        {
            EnsureFieldCapacity();
            var field = FieldCount++;
            _inScratch[field] = false;
            if (pos < text.Length && text[pos] == '"')
            {
                pos = ReadQuoted(text, pos + 1, field);
            }
            else
            {
                var rest = text[pos..];
                var end = rest.IndexOfAny(',', '\r', '\n');
                if (end < 0)
                {
                    end = rest.Length;
                }

                _starts[field] = pos;
                _lengths[field] = end;
                pos += end;
            }

            // pos is now at a delimiter, a line end or the end of the text.
            if (pos >= text.Length)
            {
                _position = pos;
                return true;
            }

            var c = text[pos];
            if (c == ',')
            {
                pos++;
                continue;
            }

            if (c == '\r' || c == '\n')
            {
                pos++;
                if (c == '\r' && pos < text.Length && text[pos] == '\n')
                {
                    pos++;
                }

                _nextLine++;
                _position = pos;
                return true;
            }

            // Text after a closing quote and before the delimiter (malformed, e.g. "ab"c): keep it as part
            // of the field, as most readers do, rather than lose data.
            var tail = text[pos..];
            var stop = tail.IndexOfAny(',', '\r', '\n');
            if (stop < 0)
            {
                stop = tail.Length;
            }

            AppendToScratchField(field, tail[..stop]);
            pos += stop;
            if (pos >= text.Length)
            {
                _position = pos;
                return true;
            }

            // Re-dispatch on the delimiter we stopped at.
            if (text[pos] == ',')
            {
                pos++;
                continue;
            }

            pos++;
            if (text[pos - 1] == '\r' && pos < text.Length && text[pos] == '\n')
            {
                pos++;
            }

            _nextLine++;
            _position = pos;
            return true;
        }
    }

    private int ReadQuoted(ReadOnlySpan<char> text, int pos, int field)
    {
        var start = pos;
        var escaped = false;
        while (true)
        {
            var rest = text[pos..];
            var q = rest.IndexOfAny('"', '\n');
            if (q < 0)
            {
                // Unterminated quote: the field runs to the end of the text.
                SetQuotedField(field, text, start, text.Length, escaped);
                return text.Length;
            }

            pos += q;
            if (text[pos] == '\n')
            {
                _nextLine++;
                pos++;
                continue;
            }

            if (pos + 1 < text.Length && text[pos + 1] == '"')
            {
                escaped = true;
                pos += 2;
                continue;
            }

            SetQuotedField(field, text, start, pos, escaped);
            return pos + 1;
        }
    }

    private void SetQuotedField(int field, ReadOnlySpan<char> text, int start, int end, bool escaped)
    {
        if (!escaped)
        {
            _starts[field] = start;
            _lengths[field] = end - start;
            return;
        }

        var raw = text[start..end];
        EnsureScratch(_scratchLength + raw.Length);
        var writeStart = _scratchLength;
        var w = writeStart;
        for (var i = 0; i < raw.Length; i++)
        {
            _scratch[w++] = raw[i];
            if (raw[i] == '"' && i + 1 < raw.Length && raw[i + 1] == '"')
            {
                i++;
            }
        }

        _scratchLength = w;
        _inScratch[field] = true;
        _starts[field] = writeStart;
        _lengths[field] = w - writeStart;
    }

    private void AppendToScratchField(int field, ReadOnlySpan<char> extra)
    {
        var current = this[field];
        var needed = current.Length + extra.Length;
        EnsureScratch(_scratchLength + needed);
        var start = _scratchLength;
        current.CopyTo(_scratch.AsSpan(start));
        extra.CopyTo(_scratch.AsSpan(start + current.Length));
        _scratchLength += needed;
        _inScratch[field] = true;
        _starts[field] = start;
        _lengths[field] = needed;
    }

    private void EnsureScratch(int size)
    {
        if (size > _scratch.Length)
        {
            Array.Resize(ref _scratch, Math.Max(size, _scratch.Length * 2));
        }
    }

    private void EnsureFieldCapacity()
    {
        if (FieldCount == _starts.Length)
        {
            var n = _starts.Length * 2;
            Array.Resize(ref _starts, n);
            Array.Resize(ref _lengths, n);
            Array.Resize(ref _inScratch, n);
        }
    }
}
