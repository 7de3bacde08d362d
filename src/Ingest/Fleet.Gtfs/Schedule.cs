using System.Collections.Frozen;

namespace Fleet.Gtfs;

/// <summary>
/// A GTFS static feed loaded into compact, immutable arrays: the schedule every other part of Fleet joins
/// against. Load one with <see cref="GtfsLoader"/>.
/// </summary>
/// <remarks>
/// <para><b>Model.</b> Ids are interned to dense integer indexes: <see cref="Stops"/>, <see cref="Routes"/>,
/// <see cref="Trips"/>, <see cref="ServiceIds"/> and <see cref="ShapeIds"/> are arrays and everything refers to
/// everything else by index, so a consumer keeps an <c>int</c>, not an object graph. All stop times live in
/// one flat array ordered by trip then stop_sequence; <see cref="GetStopTimes(int)"/> returns a trip's slice
/// without copying.</para>
/// <para><b>Time.</b> Stop times are <see cref="ServiceTime"/>s: seconds after "noon minus 12 h" of the
/// service date in the agency time zone (<see cref="TimeZone"/>), so they may exceed 24:00:00.
/// <see cref="ToUtc(DateOnly, ServiceTime)"/> turns (service date, time) into an instant, handling daylight
/// saving time the way GTFS defines it.</para>
/// <para><b>Lookups.</b> <see cref="TryGetTrip(string, out int)"/> by trip_id;
/// <see cref="TryFindTrip(string, int, DateOnly, ServiceTime, out TripInstance)"/> by (route, direction, start
/// date, start time), the GTFS-Realtime and HFP join; <see cref="TripsOnDate(DateOnly)"/> and
/// <see cref="IsServiceActive(int, DateOnly)"/> for the calendar; <see cref="GetPath(int)"/> for the trip's
/// geometry in local metres, to map-match a position (distance along and off the path).</para>
/// <para><b>Threading.</b> Immutable after loading and safe to share between threads without locking; the
/// only lazily built state (paths) is created with an interlocked publish.</para>
/// </remarks>
public sealed class Schedule
{
    private readonly FrozenDictionary<string, int> _tripIndex;
    private readonly FrozenDictionary<string, int> _routeIndex;
    private readonly FrozenDictionary<string, int> _stopIndex;
    private readonly FrozenDictionary<string, int> _serviceIndex;
    private readonly Trip[] _trips;
    private readonly StopTime[] _stopTimes;
    private readonly Frequency[] _frequencies;
    private readonly ServiceCalendar _calendar;
    private readonly Dictionary<(int Route, sbyte Direction, int Start), int[]> _byStart;
    private readonly int[][] _frequencyTripsByRoute;
    private readonly int[] _shapeFirstPoint;
    private readonly double[] _shapeX;
    private readonly double[] _shapeY;
    private readonly ShapePath?[] _shapePaths;
    private readonly ShapePath?[] _stopPaths;
    private readonly string[] _tripBlockIds;
    private readonly int[] _blockOfTrip; // index into _blockTrips, -1 without a block
    private readonly int[][] _blockTrips; // per block: its scheduled (non-frequency) trips by start time

    internal Schedule(ScheduleParts parts)
    {
        Agencies = parts.Agencies;
        TimeZone = parts.TimeZone;
        Stops = parts.Stops;
        Routes = parts.Routes;
        _trips = parts.Trips;
        ServiceIds = parts.ServiceIds;
        ShapeIds = parts.ShapeIds;
        Report = parts.Report;
        Projection = parts.Projection;
        _stopTimes = parts.StopTimes;
        _frequencies = parts.Frequencies;
        _calendar = parts.Calendar;
        _shapeFirstPoint = parts.ShapeFirstPoint;
        _shapeX = parts.ShapeX;
        _shapeY = parts.ShapeY;
        _shapePaths = parts.ShapePaths;
        _stopPaths = new ShapePath?[_trips.Length];

        _tripIndex = Index(_trips.Length, i => _trips[i].Id);
        _routeIndex = Index(Routes.Count, i => Routes[i].Id);
        _stopIndex = Index(Stops.Count, i => Stops[i].Id);
        _serviceIndex = Index(ServiceIds.Count, i => ServiceIds[i]);

        var byStart = new Dictionary<(int, sbyte, int), List<int>>();
        var frequencyTrips = new List<int>[Routes.Count];
        for (var t = 0; t < _trips.Length; t++)
        {
            var trip = _trips[t];
            if (trip.IsFrequencyBased)
            {
                (frequencyTrips[trip.RouteIndex] ??= []).Add(t);
            }
            else if (trip.StopTimeCount > 0)
            {
                var key = (trip.RouteIndex, trip.DirectionId, _stopTimes[trip.FirstStopTime].Departure.TotalSeconds);
                if (!byStart.TryGetValue(key, out var list))
                {
                    byStart[key] = list = [];
                }

                list.Add(t);
            }
        }

        _byStart = byStart.ToDictionary(p => p.Key, p => p.Value.ToArray());
        (_tripBlockIds, _blockOfTrip, _blockTrips) = IndexBlocks(parts.TripBlockIds);
        _frequencyTripsByRoute = [.. frequencyTrips.Select(l => l?.ToArray() ?? [])];
        StopTimeCount = _stopTimes.Length;
    }

    /// <summary>The feed's agencies.</summary>
    public IReadOnlyList<Agency> Agencies { get; }

    /// <summary>The agency time zone (every agency of a feed shares one, per the GTFS reference).</summary>
    public TimeZoneInfo TimeZone { get; }

    /// <summary>Stops, indexed by stop index.</summary>
    public IReadOnlyList<Stop> Stops { get; }

    /// <summary>Routes, indexed by route index.</summary>
    public IReadOnlyList<Route> Routes { get; }

    /// <summary>Trips, indexed by trip index (feed order).</summary>
    public IReadOnlyList<Trip> Trips => _trips;

    /// <summary>service_id of each service index.</summary>
    public IReadOnlyList<string> ServiceIds { get; }

    /// <summary>shape_id of each shape index.</summary>
    public IReadOnlyList<string> ShapeIds { get; }

    /// <summary>Total number of stop times.</summary>
    public int StopTimeCount { get; }

    /// <summary>Rows rejected or repaired while loading, with file, line and reason.</summary>
    public GtfsLoadReport Report { get; }

    /// <summary>The local metric projection every <see cref="ShapePath"/> uses.</summary>
    public LocalProjection Projection { get; }

    /// <summary>First service date with any active service, or null when the calendar is empty.</summary>
    public DateOnly? ServiceStart => _calendar.First;

    /// <summary>Last service date with any active service, or null when the calendar is empty.</summary>
    public DateOnly? ServiceEnd => _calendar.Last;

    /// <summary>Finds a trip by trip_id.</summary>
    public bool TryGetTrip(string tripId, out int tripIndex) => _tripIndex.TryGetValue(tripId, out tripIndex);

    /// <summary>Finds a route by route_id.</summary>
    public bool TryGetRoute(string routeId, out int routeIndex) => _routeIndex.TryGetValue(routeId, out routeIndex);

    /// <summary>Finds a stop by stop_id.</summary>
    public bool TryGetStop(string stopId, out int stopIndex) => _stopIndex.TryGetValue(stopId, out stopIndex);

    /// <summary>Finds a service by service_id.</summary>
    public bool TryGetService(string serviceId, out int serviceIndex) => _serviceIndex.TryGetValue(serviceId, out serviceIndex);

    /// <summary>The stop times of a trip, ordered by stop_sequence (a slice of the flat array, no copy).</summary>
    public ReadOnlySpan<StopTime> GetStopTimes(int tripIndex)
    {
        var trip = _trips[tripIndex];
        return _stopTimes.AsSpan(trip.FirstStopTime, trip.StopTimeCount);
    }

    /// <summary>The frequencies.txt windows of a trip (empty for a scheduled trip).</summary>
    public ReadOnlySpan<Frequency> GetFrequencies(int tripIndex)
    {
        var trip = _trips[tripIndex];
        return _frequencies.AsSpan(trip.FirstFrequency, trip.FrequencyCount);
    }

    /// <summary>Finds the stop time of a trip with the given stop_sequence; -1 when there is none.</summary>
    public int FindStopSequence(int tripIndex, int stopSequence)
    {
        var times = GetStopTimes(tripIndex);
        int lo = 0, hi = times.Length - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            var s = times[mid].Sequence;
            if (s == stopSequence)
            {
                return mid;
            }

            if (s < stopSequence)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return -1;
    }

    /// <summary>True when the service runs on <paramref name="date"/> (calendar.txt plus calendar_dates.txt exceptions).</summary>
    public bool IsServiceActive(int serviceIndex, DateOnly date) => _calendar.IsActive(serviceIndex, date);

    /// <summary>Indexes of the trips whose service runs on <paramref name="date"/>, ascending.</summary>
    public int[] TripsOnDate(DateOnly date)
    {
        var active = new bool[ServiceIds.Count];
        var any = false;
        for (var s = 0; s < active.Length; s++)
        {
            active[s] = _calendar.IsActive(s, date);
            any |= active[s];
        }

        if (!any)
        {
            return [];
        }

        var result = new List<int>();
        for (var t = 0; t < _trips.Length; t++)
        {
            if (active[_trips[t].ServiceIndex])
            {
                result.Add(t);
            }
        }

        return [.. result];
    }

    /// <summary>The trip's block_id, or null when the feed does not say which block (vehicle run) it belongs to.</summary>
    public string? GetBlockId(int tripIndex) => _tripBlockIds.Length > tripIndex && _tripBlockIds[tripIndex].Length > 0 ? _tripBlockIds[tripIndex] : null;

    /// <summary>
    /// The trip the same vehicle runs after <paramref name="tripIndex"/> on <paramref name="serviceDate"/>: the next
    /// trip of its block (by scheduled start) whose service runs that date. False without a block, for the block's
    /// last trip of the day, and for frequency-based trips (whose runs a block cannot order).
    /// </summary>
    public bool TryGetNextTripOfBlock(int tripIndex, DateOnly serviceDate, out int nextTripIndex)
    {
        nextTripIndex = -1;
        if ((uint)tripIndex >= (uint)_blockOfTrip.Length || _blockOfTrip[tripIndex] < 0)
        {
            return false;
        }

        var trips = _blockTrips[_blockOfTrip[tripIndex]];
        var at = Array.IndexOf(trips, tripIndex);
        var end = _stopTimes[_trips[tripIndex].FirstStopTime + _trips[tripIndex].StopTimeCount - 1].Arrival;
        for (var i = at + 1; i < trips.Length; i++)
        {
            var t = trips[i];
            if (_calendar.IsActive(_trips[t].ServiceIndex, serviceDate) && GetStartTime(t) >= end)
            {
                nextTripIndex = t;
                return true;
            }
        }

        return false;
    }

    private (string[] Ids, int[] BlockOfTrip, int[][] BlockTrips) IndexBlocks(string[] ids)
    {
        var blockOfTrip = new int[_trips.Length];
        Array.Fill(blockOfTrip, -1);
        if (ids.Length != _trips.Length)
        {
            return ([], blockOfTrip, []);
        }

        var byId = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        for (var t = 0; t < _trips.Length; t++)
        {
            if (ids[t].Length == 0 || _trips[t].IsFrequencyBased || _trips[t].StopTimeCount == 0)
            {
                continue;
            }

            if (!byId.TryGetValue(ids[t], out var list))
            {
                byId[ids[t]] = list = [];
            }

            list.Add(t);
        }

        var blocks = new int[byId.Count][];
        var b = 0;
        foreach (var list in byId.Values)
        {
            // Ties (two trips of a block starting together, a feed error) keep trips.txt order.
            var sorted = list.OrderBy(t => GetStartTime(t).TotalSeconds).ThenBy(t => t).ToArray();
            foreach (var t in sorted)
            {
                blockOfTrip[t] = b;
            }

            blocks[b++] = sorted;
        }

        return (ids, blockOfTrip, blocks);
    }

    /// <summary>The scheduled start of a trip: the departure from its first stop (00:00:00 when it has no stop times).</summary>
    public ServiceTime GetStartTime(int tripIndex)
    {
        var trip = _trips[tripIndex];
        return trip.StopTimeCount == 0 ? default : _stopTimes[trip.FirstStopTime].Departure;
    }

    /// <summary>
    /// Finds the trip that starts at <paramref name="startTime"/> on <paramref name="startDate"/> on a route and
    /// direction: the GTFS-Realtime join when the trip_id is absent or unknown, and the HFP join
    /// (route, dir, oday, start).
    /// </summary>
    /// <param name="routeId">route_id.</param>
    /// <param name="directionId">0 or 1; -1 when unknown (then the match must be unique across both directions).</param>
    /// <param name="startDate">The service date (GTFS-RT start_date, HFP oday).</param>
    /// <param name="startTime">The first departure. For a frequency-based trip, any departure of one of its windows
    /// (exactly on the headway grid when exact_times = 1).</param>
    /// <param name="instance">The trip as it runs on that date.</param>
    /// <returns>False when no trip matches, or when <paramref name="directionId"/> is -1 and both directions match.</returns>
    public bool TryFindTrip(string routeId, int directionId, DateOnly startDate, ServiceTime startTime, out TripInstance instance)
    {
        instance = default;
        if (!TryGetRoute(routeId, out var route))
        {
            return false;
        }

        var found = -1;
        var offset = 0;
        for (sbyte dir = -1; dir <= 1; dir++)
        {
            if (directionId >= 0 && dir != directionId && dir != -1)
            {
                continue;
            }

            if (!_byStart.TryGetValue((route, dir, startTime.TotalSeconds), out var candidates))
            {
                continue;
            }

            foreach (var t in candidates)
            {
                if (!_calendar.IsActive(_trips[t].ServiceIndex, startDate))
                {
                    continue;
                }

                if (found >= 0 && _trips[found].DirectionId != _trips[t].DirectionId && directionId < 0)
                {
                    return false; // ambiguous across directions
                }

                if (found < 0)
                {
                    found = t;
                }
            }
        }

        if (found < 0)
        {
            foreach (var t in _frequencyTripsByRoute[route])
            {
                var trip = _trips[t];
                if ((directionId >= 0 && trip.DirectionId >= 0 && trip.DirectionId != directionId) ||
                    !_calendar.IsActive(trip.ServiceIndex, startDate) || trip.StopTimeCount == 0)
                {
                    continue;
                }

                foreach (var f in GetFrequencies(t))
                {
                    if (startTime < f.Start || startTime >= f.End ||
                        (f.ExactTimes && (startTime.TotalSeconds - f.Start.TotalSeconds) % f.HeadwaySeconds != 0))
                    {
                        continue;
                    }

                    if (found >= 0 && _trips[found].DirectionId != trip.DirectionId && directionId < 0)
                    {
                        return false;
                    }

                    if (found < 0)
                    {
                        found = t;
                        offset = startTime.TotalSeconds - _stopTimes[trip.FirstStopTime].Departure.TotalSeconds;
                    }
                }
            }
        }

        if (found < 0)
        {
            return false;
        }

        instance = new TripInstance(found, startDate, startTime, offset);
        return true;
    }

    /// <summary>
    /// The instant of a service time on a service date: local noon of the date in the agency time zone, minus
    /// 12 hours, plus the time (so 25:10:00 is 01:10 the next morning, and DST days are handled as GTFS defines).
    /// </summary>
    public DateTime ToUtc(DateOnly serviceDate, ServiceTime time) =>
        ServiceDayStartUtc(serviceDate).AddSeconds(time.TotalSeconds);

    /// <summary>The origin of a service date's times: local noon minus 12 hours, as UTC.</summary>
    public DateTime ServiceDayStartUtc(DateOnly serviceDate)
    {
        var noon = serviceDate.ToDateTime(new TimeOnly(12, 0), DateTimeKind.Unspecified);
        return TimeZoneInfo.ConvertTimeToUtc(noon, TimeZone).AddHours(-12);
    }

    /// <summary>The service time of an instant relative to a service date (may be negative or exceed 24 h).</summary>
    public ServiceTime ToServiceTime(DateOnly serviceDate, DateTime utc)
    {
        var seconds = (utc.ToUniversalTime() - ServiceDayStartUtc(serviceDate)).TotalSeconds;
        return new ServiceTime(checked((int)Math.Round(seconds)));
    }

    /// <summary>The local calendar date of an instant in the agency time zone.</summary>
    public DateOnly LocalDate(DateTime utc) => DateOnly.FromDateTime(TimeZoneInfo.ConvertTimeFromUtc(utc.ToUniversalTime(), TimeZone));

    /// <summary>
    /// The geometry a trip follows, in <see cref="Projection"/> metres: its shape when it has one, otherwise the
    /// line through its stops. Built on first use and cached.
    /// </summary>
    public ShapePath GetPath(int tripIndex)
    {
        var trip = _trips[tripIndex];
        if (trip.ShapeIndex >= 0)
        {
            return GetShapePath(trip.ShapeIndex);
        }

        var cached = Volatile.Read(ref _stopPaths[tripIndex]);
        if (cached is not null)
        {
            return cached;
        }

        var built = BuildStopPath(tripIndex);
        return Interlocked.CompareExchange(ref _stopPaths[tripIndex], built, null) ?? built;
    }

    /// <summary>The geometry of a shape by shape index, built on first use and cached.</summary>
    public ShapePath GetShapePath(int shapeIndex)
    {
        var cached = Volatile.Read(ref _shapePaths[shapeIndex]);
        if (cached is not null)
        {
            return cached;
        }

        var from = _shapeFirstPoint[shapeIndex];
        var to = _shapeFirstPoint[shapeIndex + 1];
        var built = new ShapePath(Projection, _shapeX[from..to], _shapeY[from..to], fromStops: false);
        return Interlocked.CompareExchange(ref _shapePaths[shapeIndex], built, null) ?? built;
    }

    internal ShapePath BuildStopPath(int tripIndex)
    {
        var times = GetStopTimes(tripIndex);
        var xs = new List<double>(times.Length);
        var ys = new List<double>(times.Length);
        foreach (var st in times)
        {
            var stop = Stops[st.StopIndex];
            if (double.IsNaN(stop.Latitude))
            {
                continue;
            }

            var (x, y) = Projection.ToLocal(stop.Latitude, stop.Longitude);
            xs.Add(x);
            ys.Add(y);
        }

        if (xs.Count == 0)
        {
            xs.Add(0);
            ys.Add(0);
        }

        return new ShapePath(Projection, [.. xs], [.. ys], fromStops: true);
    }

    private static FrozenDictionary<string, int> Index(int count, Func<int, string> id)
    {
        var d = new Dictionary<string, int>(count, StringComparer.Ordinal);
        for (var i = 0; i < count; i++)
        {
            d.TryAdd(id(i), i);
        }

        return d.ToFrozenDictionary(StringComparer.Ordinal);
    }
}

/// <summary>Everything the loader hands to the <see cref="Schedule"/> constructor.</summary>
internal sealed class ScheduleParts
{
    public required Agency[] Agencies { get; init; }

    public required TimeZoneInfo TimeZone { get; init; }

    public required Stop[] Stops { get; init; }

    public required Route[] Routes { get; init; }

    public required Trip[] Trips { get; init; }

    /// <summary>block_id per trip (same order as <see cref="Trips"/>), empty when the feed gives none.</summary>
    public string[] TripBlockIds { get; init; } = [];

    public required string[] ServiceIds { get; init; }

    public required string[] ShapeIds { get; init; }

    public required StopTime[] StopTimes { get; init; }

    public required Frequency[] Frequencies { get; init; }

    public required ServiceCalendar Calendar { get; init; }

    public required int[] ShapeFirstPoint { get; init; }

    public required double[] ShapeX { get; init; }

    public required double[] ShapeY { get; init; }

    public required ShapePath?[] ShapePaths { get; init; }

    public required LocalProjection Projection { get; init; }

    public required GtfsLoadReport Report { get; init; }
}
