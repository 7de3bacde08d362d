using Fleet.Ingest.Events;

namespace Fleet.Tracking.Vehicles;

/// <summary>
/// Puts one vehicle's events in event-time order: holds each event until the vehicle's clock has moved
/// <see cref="TrackingOptions.Lateness"/> past it, drops exact duplicates, and counts and drops events that
/// arrive after their slot was released (unless within <see cref="TrackingOptions.LateTolerance"/>, see below).
/// </summary>
/// <remarks>
/// <para>The clock is the larger of the newest event time seen and the stream clock given to
/// <see cref="Release"/> (so a vehicle that falls silent still gets its last events out). Events with equal
/// times keep their arrival order. Not thread-safe: owned by one vehicle.</para>
/// <para><b>Late tolerance.</b> Live tracking holds nothing (lateness zero) so that a report is tracked the moment it
/// arrives. An event that then comes at most the tolerance after a newer one of the same vehicle (a stop event sent
/// a few milliseconds behind a position, as HSL's feed does) is not dropped: it is released at once, in the place
/// of the newest released event (its time moved up to that one's, at most the tolerance; <see cref="Corrected"/>
/// counts them). Exact duplicates of recently released events are still recognised and dropped. Later events are
/// counted and dropped as <see cref="Late"/>.</para>
/// </remarks>
public sealed class EventReorderBuffer
{
    private readonly EventDeque _pending = new();
    private readonly TimeSpan _lateness;
    private readonly TimeSpan _tolerance;
    // With a tolerance: the identities (time, message hash) of the last events released, to recognise a duplicate
    // that arrives after newer events (a QoS 1 redelivery). Allocated on first use.
    private long[]? _recentTicks;
    private int[]? _recentHashes;
    private int _recentNext;
    private DateTime _released = DateTime.MinValue;
    private VehicleEvent _lastReleased;
    private bool _hasReleased;
    private DateTime _maxSeen = DateTime.MinValue;

    /// <summary>Creates a buffer with the given lateness window.</summary>
    public EventReorderBuffer(TimeSpan lateness)
        : this(lateness, TimeSpan.Zero)
    {
    }

    /// <summary>Creates a buffer with the given lateness window and late tolerance (see remarks).</summary>
    public EventReorderBuffer(TimeSpan lateness, TimeSpan tolerance)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(lateness, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(tolerance, TimeSpan.Zero);
        _lateness = lateness;
        _tolerance = tolerance;
    }

    /// <summary>Events that came after newer ones but within the tolerance, released in the newest one's place.</summary>
    public long Corrected { get; private set; }

    /// <summary>Events dropped because they came after their slot was released.</summary>
    public long Late { get; private set; }

    /// <summary>Exact duplicates dropped.</summary>
    public long Duplicates { get; private set; }

    /// <summary>Events accepted into the buffer.</summary>
    public long Accepted { get; private set; }

    /// <summary>Events waiting.</summary>
    public int Count => _pending.Count;

    /// <summary>The newest event time seen.</summary>
    public DateTime MaxSeen => _maxSeen;

    /// <summary>Time up to which events were released.</summary>
    public DateTime ReleasedUpTo => _released;

    /// <summary>Restores the counters and watermark after recovery.</summary>
    internal void Restore(DateTime released, DateTime maxSeen, long late, long duplicates, long accepted, long corrected)
    {
        _released = released;
        _maxSeen = maxSeen;
        Late = late;
        Duplicates = duplicates;
        Accepted = accepted;
        Corrected = corrected;
    }

    /// <summary>
    /// Offers an event; returns false when it was late or a duplicate (and counted). An event within the late
    /// tolerance is queued at the newest released time (see remarks) and true is returned.
    /// </summary>
    public bool Add(in VehicleEvent e)
    {
        if (e.EventTime < _released || (e.EventTime == _released && _hasReleased && SameMessage(_lastReleased, e)))
        {
            if (_hasReleased && SameMessage(_lastReleased, e))
            {
                Duplicates++;
            }
            else if (_tolerance > TimeSpan.Zero && _released - e.EventTime <= _tolerance)
            {
                if (WasReleased(e))
                {
                    Duplicates++;
                    return false;
                }

                // In the newest released event's place: first in the queue, at that time.
                var moved = e;
                moved.EventTime = _released;
                Remember(e);
                _pending.Insert(0, in moved);
                Accepted++;
                Corrected++;
                return true;
            }
            else
            {
                Late++;
            }

            return false;
        }

        // Insert after every event with time <= e's (stable), scanning from the end: the common case is in order.
        var i = _pending.Count;
        while (i > 0 && _pending[i - 1].EventTime > e.EventTime)
        {
            i--;
        }

        for (var j = i - 1; j >= 0 && _pending[j].EventTime == e.EventTime; j--)
        {
            if (SameMessage(_pending[j], e))
            {
                Duplicates++;
                return false;
            }
        }

        _pending.Insert(i, in e);
        Accepted++;
        if (e.EventTime > _maxSeen)
        {
            _maxSeen = e.EventTime;
        }

        return true;
    }

    /// <summary>
    /// Releases, in order, every event at or before the clock minus the lateness; <paramref name="streamClock"/>
    /// may move the clock past the vehicle's own newest event.
    /// </summary>
    public void Release(DateTime streamClock, List<VehicleEvent> into)
    {
        var clock = streamClock > _maxSeen ? streamClock : _maxSeen;
        var limit = clock == DateTime.MinValue ? clock : clock - _lateness;
        ReleaseUpTo(limit, into);
    }

    /// <summary>A copy of the held events, oldest first (for snapshots).</summary>
    public List<VehicleEvent> Snapshot()
    {
        var list = new List<VehicleEvent>(_pending.Count);
        for (var i = 0; i < _pending.Count; i++)
        {
            list.Add(_pending[i]);
        }

        return list;
    }

    /// <summary>Releases everything (end of stream).</summary>
    public void Flush(List<VehicleEvent> into) => ReleaseUpTo(DateTime.MaxValue, into);

    private void ReleaseUpTo(DateTime limit, List<VehicleEvent> into)
    {
        if (_pending.Count == 0 || _pending[0].EventTime > limit)
        {
            return;
        }

        var n = 0;
        while (n < _pending.Count && _pending[n].EventTime <= limit)
        {
            into.Add(_pending[n]);
            n++;
        }

        if (n == 0)
        {
            return;
        }

        if (_tolerance > TimeSpan.Zero)
        {
            for (var i = 0; i < n; i++)
            {
                Remember(_pending[i]);
            }
        }

        _lastReleased = _pending[n - 1];
        _hasReleased = true;
        _released = _lastReleased.EventTime;
        _pending.RemoveFirst(n);
    }

    private const int RecentCount = 8;

    // Keeps the identity of a released event (only with a tolerance); a corrected event is remembered by its own time.
    private void Remember(in VehicleEvent e)
    {
        _recentTicks ??= new long[RecentCount];
        _recentHashes ??= new int[RecentCount];
        _recentTicks[_recentNext] = e.EventTime.Ticks;
        _recentHashes[_recentNext] = MessageHash(e);
        _recentNext = (_recentNext + 1) % RecentCount;
    }

    private bool WasReleased(in VehicleEvent e)
    {
        if (_recentTicks is null || _recentHashes is null)
        {
            return false;
        }

        var hash = MessageHash(e);
        for (var i = 0; i < RecentCount; i++)
        {
            if (_recentTicks[i] == e.EventTime.Ticks && _recentHashes[i] == hash)
            {
                return true;
            }
        }

        return false;
    }

    // The fields SameMessage compares, hashed (the time is compared separately).
    private static int MessageHash(in VehicleEvent e) =>
        HashCode.Combine(e.Type, e.Source, e.Latitude, e.Longitude, e.StopId, e.RouteId, e.StartTimeSeconds, e.Journey);

    private static bool SameMessage(in VehicleEvent a, in VehicleEvent b) =>
        a.EventTime == b.EventTime && a.Type == b.Type && a.Source == b.Source &&
        a.Latitude.Equals(b.Latitude) && a.Longitude.Equals(b.Longitude) &&
        string.Equals(a.StopId, b.StopId, StringComparison.Ordinal) &&
        string.Equals(a.RouteId, b.RouteId, StringComparison.Ordinal) &&
        a.StartTimeSeconds == b.StartTimeSeconds && a.Journey == b.Journey;
}

/// <summary>A growable ring buffer of events with insertion near the tail (events mostly come in order).</summary>
internal sealed class EventDeque
{
    private VehicleEvent[] _items = new VehicleEvent[16];
    private int _head;

    public int Count { get; private set; }

    public ref readonly VehicleEvent this[int index] => ref _items[(_head + index) & (_items.Length - 1)];

    public void Insert(int index, in VehicleEvent e)
    {
        if (Count == _items.Length)
        {
            var bigger = new VehicleEvent[_items.Length * 2];
            for (var i = 0; i < Count; i++)
            {
                bigger[i] = this[i];
            }

            _items = bigger;
            _head = 0;
        }

        var mask = _items.Length - 1;
        for (var i = Count; i > index; i--)
        {
            _items[(_head + i) & mask] = _items[(_head + i - 1) & mask];
        }

        _items[(_head + index) & mask] = e;
        Count++;
    }

    public void RemoveFirst(int n)
    {
        var mask = _items.Length - 1;
        for (var i = 0; i < n; i++)
        {
            _items[(_head + i) & mask] = default;
        }

        _head = (_head + n) & mask;
        Count -= n;
    }
}
