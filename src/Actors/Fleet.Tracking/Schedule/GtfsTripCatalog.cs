using System.Collections.Concurrent;
using Fleet.Gtfs;
using Fleet.Ingest.Events;

namespace Fleet.Tracking.Schedule;

/// <summary>
/// The <see cref="ITripCatalog"/> over a loaded GTFS <see cref="Fleet.Gtfs.Schedule"/>: the HFP join through
/// <c>Schedule.TryFindTrip</c>, the GTFS-RT join by trip_id, plans with UTC times on the service
/// date, the trip's <see cref="ShapePath"/> for map matching and scheduled headways per route, direction and stop.
/// </summary>
/// <remarks>Thread-safe; plans and headway tables are built on first use and cached.</remarks>
public sealed class GtfsTripCatalog : ITripCatalog
{
    private readonly Fleet.Gtfs.Schedule _schedule;
    private readonly ConcurrentDictionary<(int Trip, DateOnly Date, int Offset), TripPlan> _plans = new();
    private readonly ConcurrentDictionary<(int Route, sbyte Direction, DateOnly Date), Dictionary<int, int[]>> _headways = new();
    private readonly ConcurrentDictionary<int, ShapePathAdapter> _paths = new();

    /// <summary>Wraps a schedule.</summary>
    public GtfsTripCatalog(Fleet.Gtfs.Schedule schedule)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        _schedule = schedule;
    }

    /// <summary>The schedule.</summary>
    public Fleet.Gtfs.Schedule Schedule => _schedule;

    /// <inheritdoc />
    public bool TryFind(string routeId, int directionId, DateOnly serviceDate, int startSeconds, out TripPlan plan)
    {
        ArgumentNullException.ThrowIfNull(routeId);
        if (startSeconds < 0 || !_schedule.TryFindTrip(routeId, directionId, serviceDate, new ServiceTime(startSeconds), out var instance))
        {
            plan = null!;
            return false;
        }

        plan = Plan(instance.TripIndex, instance.ServiceDate, instance.OffsetSeconds);
        return true;
    }

    /// <inheritdoc />
    public bool TryGet(string tripId, DateOnly? serviceDate, DateTime near, out TripPlan plan)
    {
        ArgumentNullException.ThrowIfNull(tripId);
        plan = null!;
        if (!_schedule.TryGetTrip(tripId, out var trip) || _schedule.Trips[trip].StopTimeCount == 0)
        {
            return false;
        }

        var service = _schedule.Trips[trip].ServiceIndex;
        if (serviceDate is { } date)
        {
            plan = Plan(trip, date, 0);
            return true;
        }

        // No start_date: the active service date whose run of the trip is nearest to the event.
        var local = _schedule.LocalDate(near == default ? DateTime.UtcNow : near);
        var best = TimeSpan.MaxValue;
        var start = _schedule.GetStartTime(trip);
        foreach (var candidate in (ReadOnlySpan<DateOnly>)[local.AddDays(-1), local, local.AddDays(1)])
        {
            if (!_schedule.IsServiceActive(service, candidate))
            {
                continue;
            }

            var gap = (_schedule.ToUtc(candidate, start) - near).Duration();
            if (gap < best)
            {
                best = gap;
                plan = Plan(trip, candidate, 0);
            }
        }

        if (plan is null)
        {
            plan = Plan(trip, local, 0); // the trip is known; its calendar does not cover the date
        }

        return true;
    }

    private TripPlan Plan(int trip, DateOnly date, int offset) =>
        _plans.GetOrAdd((trip, date, offset), static (key, self) => self.Build(key.Trip, key.Date, key.Offset), this);

    private TripPlan Build(int tripIndex, DateOnly date, int offset)
    {
        var trip = _schedule.Trips[tripIndex];
        var times = _schedule.GetStopTimes(tripIndex);
        var stops = new PlannedStop[times.Length];
        var origin = _schedule.ServiceDayStartUtc(date);
        for (var i = 0; i < times.Length; i++)
        {
            var st = times[i];
            stops[i] = new PlannedStop(
                _schedule.Stops[st.StopIndex].Id,
                st.Sequence,
                origin.AddSeconds(st.Arrival.TotalSeconds + offset),
                origin.AddSeconds(st.Departure.TotalSeconds + offset),
                st.DistanceMetres);
        }

        var route = _schedule.Routes[trip.RouteIndex];
        var path = _paths.GetOrAdd(tripIndex, static (t, s) => new ShapePathAdapter(s.GetPath(t)), _schedule);
        TripPlan? plan = null;
        plan = new TripPlan(trip.Id, route.Id, trip.DirectionId, date, ModeOf(route.RouteType), stops, path,
            k => Headway(tripIndex, date, offset, k));

        // The block's next trip on the same service date (plain scheduled trips only: offset 0).
        return offset != 0 ? plan : plan.WithNextInBlock(
            () => _schedule.TryGetNextTripOfBlock(tripIndex, date, out var next) ? Plan(next, date, 0) : null);
    }

    private int Headway(int tripIndex, DateOnly date, int offset, int stopIndex)
    {
        var trip = _schedule.Trips[tripIndex];
        var table = _headways.GetOrAdd((trip.RouteIndex, trip.DirectionId, date), static (key, self) => self.BuildHeadways(key.Route, key.Direction, key.Date), this);
        var st = _schedule.GetStopTimes(tripIndex)[stopIndex];
        if (!table.TryGetValue(st.StopIndex, out var sorted))
        {
            return -1;
        }

        var at = st.Arrival.TotalSeconds + offset;
        var i = Array.BinarySearch(sorted, at);
        if (i < 0)
        {
            i = ~i;
        }

        // The previous distinct scheduled time at this stop.
        for (var j = i - 1; j >= 0; j--)
        {
            if (sorted[j] < at)
            {
                return at - sorted[j];
            }
        }

        return -1;
    }

    private Dictionary<int, int[]> BuildHeadways(int route, sbyte direction, DateOnly date)
    {
        var lists = new Dictionary<int, List<int>>();
        foreach (var t in _schedule.TripsOnDate(date))
        {
            var trip = _schedule.Trips[t];
            if (trip.RouteIndex != route || trip.DirectionId != direction || trip.IsFrequencyBased)
            {
                continue;
            }

            foreach (var st in _schedule.GetStopTimes(t))
            {
                if (!lists.TryGetValue(st.StopIndex, out var list))
                {
                    lists[st.StopIndex] = list = [];
                }

                list.Add(st.Arrival.TotalSeconds);
            }
        }

        return lists.ToDictionary(p => p.Key, p =>
        {
            var a = p.Value.ToArray();
            Array.Sort(a);
            return a;
        });
    }

    /// <summary>The transport mode of a GTFS route_type (basic and extended types).</summary>
    public static TransportMode ModeOf(int routeType) => routeType switch
    {
        0 or (>= 900 and < 1000) => TransportMode.Tram,
        1 or (>= 400 and < 500) => TransportMode.Metro,
        2 or (>= 100 and < 200) => TransportMode.Train,
        4 or (>= 1000 and < 1100) or 1200 => TransportMode.Ferry,
        3 or 11 or (>= 700 and < 800) or (>= 200 and < 300) => TransportMode.Bus,
        _ => TransportMode.Unknown,
    };

    private sealed class ShapePathAdapter(ShapePath path) : ITripPath
    {
        public double LengthMetres => path.LengthMetres;

        public PathMatch Project(double latitude, double longitude, double fromMetres, double toMetres)
        {
            var p = path.Project(latitude, longitude, fromMetres, toMetres);
            return new PathMatch(p.AlongMetres, p.OffMetres);
        }
    }
}
