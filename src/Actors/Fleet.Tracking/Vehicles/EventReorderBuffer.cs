using Fleet.Ingest.Events;

namespace Fleet.Tracking.Vehicles;

/// <summary>
/// Puts one vehicle's events in event-time order: holds each event until the vehicle's clock has moved
/// <see cref="TrackingOptions.Lateness"/> past it, drops exact duplicates, and counts and drops events that
/// arrive after their slot was released.
/// </summary>
/// <remarks>
/// The clock is the larger of the newest event time seen and the stream clock given to
/// <see cref="Release"/> (so a vehicle that falls silent still gets its last events out). Events with equal
/// times keep their arrival order. Not thread-safe: owned by one vehicle.
/// </remarks>
public sealed class EventReorderBuffer
{
    private readonly EventDeque _pending = new();
    private readonly TimeSpan _lateness;
    private DateTime _released = DateTime.MinValue;
    private VehicleEvent _lastReleased;
    private bool _hasReleased;
    private DateTime _maxSeen = DateTime.MinValue;

    /// <summary>Creates a buffer with the given lateness window.</summary>
    public EventReorderBuffer(TimeSpan lateness)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(lateness, TimeSpan.Zero);
        _lateness = lateness;
    }

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
    internal void Restore(DateTime released, DateTime maxSeen, long late, long duplicates, long accepted)
    {
        _released = released;
        _maxSeen = maxSeen;
        Late = late;
        Duplicates = duplicates;
        Accepted = accepted;
    }

    /// <summary>Offers an event; returns false when it was late or a duplicate (and counted).</summary>
    public bool Add(in VehicleEvent e)
    {
        if (e.EventTime < _released || (e.EventTime == _released && _hasReleased && SameMessage(_lastReleased, e)))
        {
            if (_hasReleased && SameMessage(_lastReleased, e))
            {
                Duplicates++;
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

        _lastReleased = _pending[n - 1];
        _hasReleased = true;
        _released = _lastReleased.EventTime;
        _pending.RemoveFirst(n);
    }

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
