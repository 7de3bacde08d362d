namespace Fleet.Simulation.Output;

/// <summary>
/// Collects recording lines that are produced slightly out of receive order (vehicles report with different
/// latencies) and writes them to a stream in receive-time order once no earlier line can still arrive.
/// </summary>
/// <remarks>
/// A line is <c>&lt;receive time&gt; &lt;topic&gt; &lt;payload&gt;\n</c>; the caller builds topic and payload and
/// passes the receive time separately, so sorting never parses. Ties keep insertion order. Not thread-safe.
/// </remarks>
public sealed class OrderedRecording
{
    private readonly Stream _output;
    private readonly Utf8Line _head = new(64);
    private byte[] _arena = new byte[1 << 20];
    private int _arenaLength;
    private Entry[] _entries = new Entry[4096];
    private int _count;
    private long _sequence;
    private byte[] _spare = new byte[1 << 20];

    /// <summary>Writes to <paramref name="output"/> (not disposed by this type).</summary>
    public OrderedRecording(Stream output) => _output = output;

    /// <summary>Lines written so far.</summary>
    public long LinesWritten { get; private set; }

    /// <summary>Bytes written so far (uncompressed).</summary>
    public long BytesWritten { get; private set; }

    /// <summary>Line numbers (1-based) of lines added with a non-null tag, with the tag, in file order.</summary>
    public List<(long Line, string Tag)> TaggedLines { get; } = [];

    /// <summary>Queues one line: <paramref name="receiveTicks"/> (UTC ticks) becomes the line's time prefix.</summary>
    public void Add(long receiveTicks, ReadOnlySpan<byte> topicAndPayload, string? tag = null)
    {
        _head.Clear();
        _head.AppendTimestamp(receiveTicks, 6).Append((byte)' ');
        var size = _head.Length + topicAndPayload.Length + 1;
        if (_arenaLength + size > _arena.Length)
        {
            Array.Resize(ref _arena, Math.Max(_arena.Length * 2, _arenaLength + size));
        }

        _head.Written.CopyTo(_arena.AsSpan(_arenaLength));
        topicAndPayload.CopyTo(_arena.AsSpan(_arenaLength + _head.Length));
        _arena[_arenaLength + size - 1] = (byte)'\n';
        if (_count == _entries.Length)
        {
            Array.Resize(ref _entries, _count * 2);
        }

        _entries[_count++] = new Entry(receiveTicks, _sequence++, _arenaLength, size, tag);
        _arenaLength += size;
    }

    /// <summary>Queues a complete line (with its own time prefix and newline), sorted as if received at <paramref name="sortTicks"/>.</summary>
    public void AddRaw(long sortTicks, ReadOnlySpan<byte> line, string? tag = null)
    {
        if (_arenaLength + line.Length > _arena.Length)
        {
            Array.Resize(ref _arena, Math.Max(_arena.Length * 2, _arenaLength + line.Length));
        }

        line.CopyTo(_arena.AsSpan(_arenaLength));
        if (_count == _entries.Length)
        {
            Array.Resize(ref _entries, _count * 2);
        }

        _entries[_count++] = new Entry(sortTicks, _sequence++, _arenaLength, line.Length, tag);
        _arenaLength += line.Length;
    }

    /// <summary>Writes every queued line received before <paramref name="beforeTicks"/>, in order.</summary>
    public void FlushBefore(long beforeTicks)
    {
        if (_count == 0)
        {
            return;
        }

        Array.Sort(_entries, 0, _count, EntryComparer.Instance);
        var n = 0;
        while (n < _count && _entries[n].ReceiveTicks < beforeTicks)
        {
            ref readonly var e = ref _entries[n];
            _output.Write(_arena, e.Offset, e.Length);
            LinesWritten++;
            BytesWritten += e.Length;
            if (e.Tag is not null)
            {
                TaggedLines.Add((LinesWritten, e.Tag));
            }

            n++;
        }

        if (n == 0)
        {
            return;
        }

        // Keep the rest: move their bytes to the spare arena, then swap, so the arena never grows without bound.
        var spareLength = 0;
        for (var k = n; k < _count; k++)
        {
            var e = _entries[k];
            if (spareLength + e.Length > _spare.Length)
            {
                Array.Resize(ref _spare, Math.Max(_spare.Length * 2, spareLength + e.Length));
            }

            Buffer.BlockCopy(_arena, e.Offset, _spare, spareLength, e.Length);
            _entries[k - n] = e with { Offset = spareLength };
            spareLength += e.Length;
        }

        _count -= n;
        (_arena, _spare) = (_spare, _arena);
        _arenaLength = spareLength;
    }

    /// <summary>Writes everything that is queued.</summary>
    public void FlushAll() => FlushBefore(long.MaxValue);

    private readonly record struct Entry(long ReceiveTicks, long Sequence, int Offset, int Length, string? Tag);

    private sealed class EntryComparer : IComparer<Entry>
    {
        public static readonly EntryComparer Instance = new();

        public int Compare(Entry x, Entry y)
        {
            var c = x.ReceiveTicks.CompareTo(y.ReceiveTicks);
            return c != 0 ? c : x.Sequence.CompareTo(y.Sequence);
        }
    }
}
