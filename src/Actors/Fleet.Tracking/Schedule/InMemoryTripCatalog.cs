namespace Fleet.Tracking.Schedule;

/// <summary>
/// An <see cref="ITripCatalog"/> over plans added by hand: for tests, benchmarks and schedules built in code.
/// Scheduled headways are derived from the plans added (same route and direction, previous arrival at the stop).
/// </summary>
/// <remarks>Add every plan before tracking starts; lookups are then thread-safe.</remarks>
public sealed class InMemoryTripCatalog : ITripCatalog
{
    private readonly Dictionary<(string TripId, DateOnly Date), TripPlan> _byId = [];
    private readonly Dictionary<(string Route, int Direction, DateOnly Date, int Start), TripPlan> _byStart = [];
    private readonly TimeZoneInfo _timeZone;

    /// <summary>Creates an empty catalog whose local times are in <paramref name="timeZone"/> (UTC when null).</summary>
    public InMemoryTripCatalog(TimeZoneInfo? timeZone = null) => _timeZone = timeZone ?? TimeZoneInfo.Utc;

    /// <summary>The plans added.</summary>
    public IEnumerable<TripPlan> Plans => _byId.Values;

    /// <summary>
    /// Builds and adds a plan from local times (seconds after midnight of <paramref name="date"/>) and stop distances.
    /// </summary>
    public TripPlan Add(string tripId, string routeId, int directionId, DateOnly date, ITripPath path,
        IReadOnlyList<(string StopId, int ArrivalSeconds, int DepartureSeconds, double DistanceMetres)> stops,
        Fleet.Ingest.Events.TransportMode mode = Fleet.Ingest.Events.TransportMode.Bus)
    {
        ArgumentNullException.ThrowIfNull(stops);
        var midnight = TimeZoneInfo.ConvertTimeToUtc(date.ToDateTime(TimeOnly.MinValue, DateTimeKind.Unspecified), _timeZone);
        var planned = new PlannedStop[stops.Count];
        for (var i = 0; i < stops.Count; i++)
        {
            planned[i] = new PlannedStop(stops[i].StopId, i + 1, midnight.AddSeconds(stops[i].ArrivalSeconds),
                midnight.AddSeconds(stops[i].DepartureSeconds), stops[i].DistanceMetres);
        }

        TripPlan? plan = null;
        plan = new TripPlan(tripId, routeId, directionId, date, mode, planned, path, k => Headway(plan!, k));
        _byId[(tripId, date)] = plan;
        _byStart[(routeId, directionId, date, stops.Count > 0 ? stops[0].DepartureSeconds : 0)] = plan;
        return plan;
    }

    /// <inheritdoc />
    public bool TryFind(string routeId, int directionId, DateOnly serviceDate, int startSeconds, out TripPlan plan)
    {
        if (_byStart.TryGetValue((routeId, directionId, serviceDate, startSeconds), out plan!))
        {
            return true;
        }

        if (directionId < 0)
        {
            foreach (var d in (ReadOnlySpan<int>)[0, 1])
            {
                if (_byStart.TryGetValue((routeId, d, serviceDate, startSeconds), out plan!))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <inheritdoc />
    public bool TryGet(string tripId, DateOnly? serviceDate, DateTime near, out TripPlan plan)
    {
        if (serviceDate is { } date)
        {
            return _byId.TryGetValue((tripId, date), out plan!);
        }

        plan = null!;
        var best = TimeSpan.MaxValue;
        foreach (var ((id, _), p) in _byId)
        {
            if (id != tripId)
            {
                continue;
            }

            var gap = (p.Start - near).Duration();
            if (gap < best)
            {
                best = gap;
                plan = p;
            }
        }

        return plan is not null;
    }

    private int Headway(TripPlan plan, int stopIndex)
    {
        var at = plan.Stops[stopIndex].Arrival;
        var stopId = plan.Stops[stopIndex].StopId;
        var best = TimeSpan.MaxValue;
        foreach (var other in _byId.Values)
        {
            if (ReferenceEquals(other, plan) || other.RouteId != plan.RouteId || other.DirectionId != plan.DirectionId)
            {
                continue;
            }

            foreach (var s in other.Stops)
            {
                if (s.StopId == stopId && s.Arrival < at && at - s.Arrival < best)
                {
                    best = at - s.Arrival;
                }
            }
        }

        return best == TimeSpan.MaxValue ? -1 : (int)best.TotalSeconds;
    }
}
