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
    private byte[] _arena = new byte[8 << 20];
    private int _arenaLength;
    private Entry[] _entries = new Entry[4096];
    private Entry[] _mergeBuffer = new Entry[4096];
    private int _count;

    // Entries [0, _sortedCount) are in order (what a flush left behind); entries added since are sorted and merged
    // into them at the next flush, so a flush sorts about one second of lines rather than everything pending.
    private int _sortedCount;
    private long _sequence;
    private byte[] _spare = new byte[8 << 20];

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
        var offset = Reserve(size);
        _head.Written.CopyTo(_arena.AsSpan(offset));
        topicAndPayload.CopyTo(_arena.AsSpan(offset + _head.Length));
        _arena[offset + size - 1] = (byte)'\n';
        Append(new Entry(receiveTicks, _sequence++, offset, size, tag));
    }

    /// <summary>Queues a complete line (with its own time prefix and newline), sorted as if received at <paramref name="sortTicks"/>.</summary>
    public void AddRaw(long sortTicks, ReadOnlySpan<byte> line, string? tag = null)
    {
        var offset = Reserve(line.Length);
        line.CopyTo(_arena.AsSpan(offset));
        Append(new Entry(sortTicks, _sequence++, offset, line.Length, tag));
    }

    /// <summary>Writes every queued line received before <paramref name="beforeTicks"/>, in order.</summary>
    public void FlushBefore(long beforeTicks)
    {
        if (_count == 0)
        {
            return;
        }

        SortPending();
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

        // The written lines' bytes stay in the arena until it fills up (see Reserve).
        _count -= n;
        Array.Copy(_entries, n, _entries, 0, _count);
        _sortedCount = _count;
    }

    /// <summary>Writes everything that is queued.</summary>
    public void FlushAll() => FlushBefore(long.MaxValue);

    private void Append(in Entry entry)
    {
        if (_count == _entries.Length)
        {
            Array.Resize(ref _entries, _count * 2);
        }

        _entries[_count++] = entry;
    }

    /// <summary>Sorts the entries added since the last flush and merges them into the sorted rest.</summary>
    private void SortPending()
    {
        var fresh = _count - _sortedCount;
        if (fresh == 0)
        {
            return;
        }

        _entries.AsSpan(_sortedCount, fresh).Sort();
        if (_sortedCount == 0 || _entries[_sortedCount - 1].CompareTo(_entries[_sortedCount]) < 0)
        {
            _sortedCount = _count;
            return;
        }

        // Merge: the old run is copied aside, then both runs are merged from the front (the write position never
        // passes the read position of the fresh run, so it can stay in place).
        if (_mergeBuffer.Length < _sortedCount)
        {
            _mergeBuffer = new Entry[Math.Max(_mergeBuffer.Length * 2, _sortedCount)];
        }

        Array.Copy(_entries, _mergeBuffer, _sortedCount);
        int left = 0, right = _sortedCount, write = 0;
        while (left < _sortedCount && right < _count)
        {
            _entries[write++] = _mergeBuffer[left].CompareTo(_entries[right]) <= 0 ? _mergeBuffer[left++] : _entries[right++];
        }

        while (left < _sortedCount)
        {
            _entries[write++] = _mergeBuffer[left++];
        }

        _sortedCount = _count;
    }

    /// <summary>
    /// Space for <paramref name="size"/> bytes at the end of the arena. When the arena is full, the bytes of the
    /// lines still queued move to the spare arena (a few hundred kB against megabytes), which becomes the arena.
    /// </summary>
    private int Reserve(int size)
    {
        if (_arenaLength + size > _arena.Length)
        {
            var live = size;
            for (var k = 0; k < _count; k++)
            {
                live += _entries[k].Length;
            }

            if (live * 2 > _spare.Length)
            {
                _spare = new byte[Math.Max(_spare.Length * 2, live * 2)];
            }

            var spareLength = 0;
            for (var k = 0; k < _count; k++)
            {
                ref var e = ref _entries[k];
                Buffer.BlockCopy(_arena, e.Offset, _spare, spareLength, e.Length);
                e = e with { Offset = spareLength };
                spareLength += e.Length;
            }

            (_arena, _spare) = (_spare, _arena);
            _arenaLength = spareLength;
        }

        var offset = _arenaLength;
        _arenaLength += size;
        return offset;
    }

    /// <summary>A queued line; ordered by receive time, ties in the order they were added.</summary>
    private readonly record struct Entry(long ReceiveTicks, long Sequence, int Offset, int Length, string? Tag) : IComparable<Entry>
    {
        public int CompareTo(Entry other)
        {
            var c = ReceiveTicks.CompareTo(other.ReceiveTicks);
            return c != 0 ? c : Sequence.CompareTo(other.Sequence);
        }
    }
}
