using Fleet.Ingest.Events;

namespace Fleet.Tracking.Schedule;

/// <summary>One scheduled stop of a <see cref="TripPlan"/>, with its times on the plan's service date.</summary>
/// <param name="StopId">GTFS stop_id.</param>
/// <param name="Sequence">GTFS stop_sequence.</param>
/// <param name="Arrival">Scheduled arrival, UTC.</param>
/// <param name="Departure">Scheduled departure, UTC.</param>
/// <param name="DistanceMetres">Distance along the trip's path, metres.</param>
public readonly record struct PlannedStop(string StopId, int Sequence, DateTime Arrival, DateTime Departure, double DistanceMetres);

/// <summary>
/// A trip as it runs on one service date: the stops with their UTC times, the path it follows and how it is
/// identified by each stream. What the vehicle tracker joins its events against.
/// </summary>
/// <remarks>Immutable; shared between every vehicle that drives the trip (and cached by the catalog).</remarks>
public sealed class TripPlan
{
    private readonly Func<int, int>? _headway;
    private int[]? _headways;
    private Func<TripPlan?>? _nextInBlock;
    private TripPlan? _next;
    private int _nextResolved;

    /// <summary>Creates a plan. <paramref name="stops"/> must be ordered by sequence and distance.</summary>
    /// <param name="tripId">GTFS trip_id.</param>
    /// <param name="routeId">GTFS route_id.</param>
    /// <param name="directionId">GTFS direction_id, -1 when unknown.</param>
    /// <param name="serviceDate">The service date.</param>
    /// <param name="mode">The transport mode of the route.</param>
    /// <param name="stops">The stops in order.</param>
    /// <param name="path">The geometry, in metres along.</param>
    /// <param name="headway">Scheduled headway in seconds at stop index i to the trip before on the same route and
    /// direction (-1 when there is none); evaluated lazily once per stop.</param>
    public TripPlan(string tripId, string routeId, int directionId, DateOnly serviceDate, TransportMode mode,
        PlannedStop[] stops, ITripPath path, Func<int, int>? headway = null)
    {
        ArgumentNullException.ThrowIfNull(tripId);
        ArgumentNullException.ThrowIfNull(routeId);
        ArgumentNullException.ThrowIfNull(stops);
        ArgumentNullException.ThrowIfNull(path);
        TripId = tripId;
        RouteId = routeId;
        DirectionId = (sbyte)directionId;
        ServiceDate = serviceDate;
        Mode = mode;
        Stops = stops;
        Path = path;
        _headway = headway;
    }

    /// <summary>GTFS trip_id.</summary>
    public string TripId { get; }

    /// <summary>GTFS route_id.</summary>
    public string RouteId { get; }

    /// <summary>GTFS direction_id; -1 when unknown.</summary>
    public sbyte DirectionId { get; }

    /// <summary>Service date.</summary>
    public DateOnly ServiceDate { get; }

    /// <summary>Transport mode of the route.</summary>
    public TransportMode Mode { get; }

    /// <summary>Stops in order.</summary>
    public IReadOnlyList<PlannedStop> Stops { get; }

    /// <summary>Geometry.</summary>
    public ITripPath Path { get; }

    /// <summary>Scheduled departure from the first stop.</summary>
    public DateTime Start => Stops.Count > 0 ? Stops[0].Departure : default;

    /// <summary>Scheduled arrival at the last stop.</summary>
    public DateTime End => Stops.Count > 0 ? Stops[^1].Arrival : default;

    /// <summary>Scheduled headway in seconds at a stop to the previous trip of the route and direction; -1 when unknown.</summary>
    public int ScheduledHeadwaySeconds(int stopIndex)
    {
        if (_headway is null || (uint)stopIndex >= (uint)Stops.Count)
        {
            return -1;
        }

        var cache = _headways;
        if (cache is null)
        {
            cache = new int[Stops.Count];
            Array.Fill(cache, int.MinValue);
            cache = Interlocked.CompareExchange(ref _headways, cache, null) ?? cache;
        }

        var h = Volatile.Read(ref cache[stopIndex]);
        if (h == int.MinValue)
        {
            h = _headway(stopIndex);
            Volatile.Write(ref cache[stopIndex], h);
        }

        return h;
    }

    /// <summary>
    /// The trip the same vehicle runs next (the next trip of the GTFS block on this service date), or null when the
    /// block is unknown or this is its last trip. Resolved once, on first use.
    /// </summary>
    public TripPlan? NextInBlock
    {
        get
        {
            if (Volatile.Read(ref _nextResolved) == 0)
            {
                // Two threads may both resolve; the catalog caches plans, so both get the same instance.
                var next = _nextInBlock?.Invoke();
                Volatile.Write(ref _next, next);
                Volatile.Write(ref _nextResolved, 1);
            }

            return Volatile.Read(ref _next);
        }
    }

    /// <summary>Sets how <see cref="NextInBlock"/> is found (the catalog's block lookup); before first use only.</summary>
    public TripPlan WithNextInBlock(Func<TripPlan?> nextInBlock)
    {
        ArgumentNullException.ThrowIfNull(nextInBlock);
        _nextInBlock = nextInBlock;
        return this;
    }

    /// <summary>Index of the stop with <paramref name="stopId"/> at or after <paramref name="from"/>, else anywhere; -1 when absent.</summary>
    public int IndexOfStop(string stopId, int from = 0)
    {
        var stops = Stops;
        for (var i = Math.Max(0, from); i < stops.Count; i++)
        {
            if (string.Equals(stops[i].StopId, stopId, StringComparison.Ordinal))
            {
                return i;
            }
        }

        for (var i = 0; i < Math.Min(from, stops.Count); i++)
        {
            if (string.Equals(stops[i].StopId, stopId, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Index of the stop with a GTFS stop_sequence; -1 when absent.</summary>
    public int IndexOfSequence(int sequence)
    {
        var stops = Stops;
        for (var i = 0; i < stops.Count; i++)
        {
            if (stops[i].Sequence == sequence)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>
    /// The scheduled instant at which the trip is at <paramref name="alongMetres"/>, for the delay of a vehicle seen
    /// there at <paramref name="at"/>: interpolated by distance between a departure and the next arrival, and, inside
    /// a stop's zone (<paramref name="zoneMetres"/>), <paramref name="at"/> clamped to the scheduled dwell.
    /// </summary>
    public DateTime ScheduledAt(double alongMetres, DateTime at, double zoneMetres)
    {
        var stops = Stops;
        if (stops.Count == 0)
        {
            return at;
        }

        // Binary search for the last stop at or before the position.
        int lo = 0, hi = stops.Count - 1;
        while (lo < hi)
        {
            var mid = (lo + hi + 1) >>> 1;
            if (stops[mid].DistanceMetres <= alongMetres)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }

        var i = lo;
        var before = stops[i];
        if (alongMetres <= before.DistanceMetres + zoneMetres || i == stops.Count - 1)
        {
            return Clamp(at, i == 0 && alongMetres < before.DistanceMetres ? before.Departure : before.Arrival, before.Departure);
        }

        var next = stops[i + 1];
        if (alongMetres >= next.DistanceMetres - zoneMetres)
        {
            return Clamp(at, next.Arrival, next.Departure);
        }

        var span = next.DistanceMetres - before.DistanceMetres;
        var f = span > 0 ? (alongMetres - before.DistanceMetres) / span : 0;
        return before.Departure.AddTicks((long)(f * (next.Arrival - before.Departure).Ticks));
    }

    private static DateTime Clamp(DateTime t, DateTime min, DateTime max) => t < min ? min : t > max ? max : t;

    /// <inheritdoc />
    public override string ToString() => $"{TripId} ({RouteId}/{DirectionId} {ServiceDate:yyyy-MM-dd})";
}
