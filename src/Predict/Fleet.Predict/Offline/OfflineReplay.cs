using Fleet.Gtfs;
using Fleet.Ingest.Events;
using Fleet.Predict.Online;

namespace Fleet.Predict.Offline;

/// <summary>Options of <see cref="OfflineReplay"/>.</summary>
public sealed record ReplayOptions
{
    /// <summary>Event-time seconds between two prediction points of one vehicle.</summary>
    public double SampleIntervalSeconds { get; init; } = 30;

    /// <summary>The delay trend is the change of delay over about this many seconds.</summary>
    public double TrendWindowSeconds { get; init; } = 120;
}

/// <summary>One prediction point of a replay: the filled context and the trip's actual stop times.</summary>
/// <param name="Context">The context, filled as the vehicle entity would have it at that moment.</param>
/// <param name="Actual">The trip's actual stop times (the answer; only later stops are unknown to the context).</param>
/// <param name="Profile">The historical profile to predict with.</param>
public readonly record struct ReplayPoint(PredictionContext Context, TripActuals Actual, BoundProfile Profile);

/// <summary>
/// Replays a recording against the schedule offline, the way the live platform would see it: collects vehicle
/// positions (thinned to prediction points) and stop events, then walks event time, feeding every observed running
/// and dwell time into a fresh <see cref="LiveStatistics"/> and filling a <see cref="PredictionContext"/> at every
/// prediction point.
/// </summary>
/// <remarks>
/// Without a truth file, arrivals are detected from HFP stop events: ARS (arrived) or else ARR (entered the stop
/// radius) for the arrival, PDE (ready to depart) or else DEP for the departure, PAS (passed) for both. Events whose
/// trip does not resolve against the schedule are counted, not guessed. Not thread-safe.
/// </remarks>
public sealed class OfflineReplay
{
    private readonly Schedule _schedule;
    private readonly ReplayOptions _options;
    private readonly Dictionary<(string Route, sbyte Dir, DateOnly Day, int Start), TripInstance?> _tripCache = [];
    private readonly Dictionary<string, int> _vehicles = new(StringComparer.Ordinal);
    private readonly List<double> _lastSample = [];
    private readonly List<Sample> _samples = [];
    private readonly ActualStopTimes _detected = new();
    private readonly Dictionary<TripKey, int> _detectCursor = [];

    private readonly record struct Sample(int Vehicle, TripKey Trip, int Offset, double Time, double Odometer, double Delay);

    /// <summary>Creates a replay over a schedule.</summary>
    public OfflineReplay(Schedule schedule, ReplayOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        _schedule = schedule;
        _options = options ?? new ReplayOptions();
    }

    /// <summary>Events offered.</summary>
    public long Events { get; private set; }

    /// <summary>Events whose trip did not resolve against the schedule.</summary>
    public long UnmatchedTrip { get; private set; }

    /// <summary>Prediction points kept.</summary>
    public int Samples => _samples.Count;

    /// <summary>The event time (Unix seconds) of the earliest and the latest prediction point; NaN without points.</summary>
    public (double First, double Last) SampleTimeRange =>
        _samples.Count == 0 ? (double.NaN, double.NaN) : (_samples.Min(s => s.Time), _samples.Max(s => s.Time));

    /// <summary>Arrivals detected from HFP stop events.</summary>
    public ActualStopTimes Detected => _detected;

    /// <summary>Offers one normalized event (HFP; other sources are ignored).</summary>
    public void Add(in VehicleEvent ev)
    {
        Events++;
        if (ev.Source != EventSource.Hfp || ev.Journey is not (JourneyType.Journey or JourneyType.Unknown) || ev.RouteId is null ||
            ev.OperatingDay is not { } day || ev.StartTimeSeconds < 0)
        {
            return;
        }

        if (!TryResolve(ev.RouteId, ev.DirectionId, day, ev.StartTimeSeconds, out var trip))
        {
            UnmatchedTrip++;
            return;
        }

        var key = new TripKey(trip.TripIndex, trip.ServiceDate);
        var time = PredictionContext.ToUnix(ev.EventTime);
        switch (ev.Type)
        {
            case EventType.Vp:
                AddSample(ev, key, trip.OffsetSeconds, time);
                break;
            case EventType.Ars or EventType.Arr or EventType.Pde or EventType.Dep or EventType.Pas:
                Detect(ev, key, trip.OffsetSeconds, time);
                break;
            default:
                break;
        }
    }

    /// <summary>
    /// Adds a prediction point of a trip the caller resolved (e.g. a TripUpdates poll): the vehicle, its trip, the
    /// poll time and the delay it reported (NaN: derived from the last stop event). Thinned like any point.
    /// </summary>
    public void AddPoint(string vehicleId, TripKey trip, int offsetSeconds, double timeUnix, double delaySeconds)
    {
        ArgumentNullException.ThrowIfNull(vehicleId);
        Events++;
        if (!_vehicles.TryGetValue(vehicleId, out var v))
        {
            v = _vehicles.Count;
            _vehicles[vehicleId] = v;
            _lastSample.Add(double.NegativeInfinity);
        }

        if (timeUnix - _lastSample[v] < _options.SampleIntervalSeconds)
        {
            return;
        }

        _lastSample[v] = timeUnix;
        _samples.Add(new Sample(v, trip, offsetSeconds, timeUnix, double.NaN, delaySeconds));
    }

    private bool TryResolve(string route, sbyte dir, DateOnly day, int start, out TripInstance trip)
    {
        var cacheKey = (route, dir, day, start);
        if (!_tripCache.TryGetValue(cacheKey, out var found))
        {
            found = _schedule.TryFindTrip(route, dir, day, new ServiceTime(start), out var t) ? t : null;
            _tripCache[cacheKey] = found;
        }

        trip = found.GetValueOrDefault();
        return found.HasValue;
    }

    private void AddSample(in VehicleEvent ev, TripKey key, int offset, double time)
    {
        if (!_vehicles.TryGetValue(ev.VehicleId, out var v))
        {
            v = _vehicles.Count;
            _vehicles[ev.VehicleId] = v;
            _lastSample.Add(double.NegativeInfinity);
        }

        if (time - _lastSample[v] < _options.SampleIntervalSeconds)
        {
            return;
        }

        _lastSample[v] = time;
        _samples.Add(new Sample(v, key, offset, time, ev.Odometer, ev.DelaySeconds is { } d ? d : double.NaN));
    }

    private void Detect(in VehicleEvent ev, TripKey key, int offset, double time)
    {
        if (ev.StopId is null || !_schedule.TryGetStop(ev.StopId, out var stopIndex))
        {
            _detected.Reject("unknown_stop");
            return;
        }

        var times = _schedule.GetStopTimes(key.TripIndex);
        var cursor = _detectCursor.GetValueOrDefault(key);
        var k = -1;
        for (var i = cursor; i < times.Length; i++)
        {
            if (times[i].StopIndex == stopIndex)
            {
                k = i;
                break;
            }
        }

        if (k < 0)
        {
            _detected.Reject("stop_not_on_trip");
            return;
        }

        var trip = _detected.GetOrAdd(_schedule, key, offset);
        trip.Vehicle ??= ev.VehicleId;
        // A stronger event (ARS, PDE) overwrites a weaker one (ARR, DEP); a weaker one only fills a gap.
        switch (ev.Type)
        {
            case EventType.Ars:
                trip.Arrival[k] = time;
                break;
            case EventType.Arr when double.IsNaN(trip.Arrival[k]):
                trip.Arrival[k] = time;
                break;
            case EventType.Pde:
                trip.Departure[k] = time;
                _detectCursor[key] = k; // departing commits the stop: later events match later stops
                break;
            case EventType.Dep when double.IsNaN(trip.Departure[k]):
                trip.Departure[k] = time;
                _detectCursor[key] = k;
                break;
            case EventType.Pas:
                trip.Arrival[k] = time;
                trip.Departure[k] = time;
                _detectCursor[key] = k;
                break;
            default:
                break;
        }

        _detected.Accept();
    }

    /// <summary>Fixes detected tables up: the first stop's arrival is its departure (as in truth.csv), a missing departure is the arrival.</summary>
    public void FinishDetection()
    {
        _detected.FillAsTruthCsv();
    }

    /// <summary>
    /// Walks event time over the prediction points, feeding <paramref name="live"/> with every running and dwell time
    /// from <paramref name="actuals"/> as it completes, and calls <paramref name="onPoint"/> with the filled context.
    /// </summary>
    /// <param name="actuals">Ground truth (and the observations the online statistics learn from).</param>
    /// <param name="live">The online store to feed (fresh for a replay).</param>
    /// <param name="profileFor">The historical profile a trip is predicted with (cross-fitting uses another fold's).</param>
    /// <param name="onPoint">Called once per usable prediction point, in event-time order.</param>
    /// <param name="progress">Optional: fraction of points done.</param>
    /// <returns>Number of prediction points delivered.</returns>
    public int Run(ActualStopTimes actuals, LiveStatistics live, Func<TripKey, BoundProfile> profileFor, Action<ReplayPoint> onPoint, Action<double>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(actuals);
        ArgumentNullException.ThrowIfNull(live);
        ArgumentNullException.ThrowIfNull(profileFor);
        ArgumentNullException.ThrowIfNull(onPoint);

        // Completed observations in event-time order: (time, trip, stop index, kind 0 = arrival, 1 = departure).
        var observations = new List<(double Time, TripActuals Trip, int Stop, byte Kind)>();
        foreach (var trip in actuals.Trips.Values)
        {
            for (var k = 0; k < trip.Arrival.Length; k++)
            {
                if (!double.IsNaN(trip.Arrival[k]))
                {
                    observations.Add((trip.Known(k, trip.Arrival[k]), trip, k, 0));
                }

                if (k > 0 && k < trip.Arrival.Length - 1 && !double.IsNaN(trip.Departure[k]))
                {
                    observations.Add((trip.Known(k, trip.Departure[k]), trip, k, 1));
                }
            }
        }

        observations.Sort((a, b) => a.Time.CompareTo(b.Time));
        var order = new int[_samples.Count];
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        Array.Sort(order, (a, b) =>
        {
            var c = _samples[a].Time.CompareTo(_samples[b].Time);
            return c != 0 ? c : a.CompareTo(b);
        });

        // Each trip's samples, for the delay trend (a short look back).
        var context = new PredictionContext(_schedule, live);
        var trend = new Dictionary<TripKey, List<(double Time, double Delay)>>();
        var next = 0;
        var delivered = 0;
        for (var oi = 0; oi < order.Length; oi++)
        {
            var s = _samples[order[oi]];
            while (next < observations.Count && observations[next].Time <= s.Time)
            {
                Observe(observations[next], live);
                next++;
            }

            if (progress is not null && (oi & 1023) == 0)
            {
                progress((double)oi / order.Length);
            }

            if (!actuals.Trips.TryGetValue(s.Trip, out var actual))
            {
                continue;
            }

            if (!double.IsNaN(s.Delay))
            {
                if (!trend.TryGetValue(s.Trip, out var history))
                {
                    trend[s.Trip] = history = [];
                }

                history.Add((s.Time, s.Delay));
            }

            if (!Fill(context, s, actual, profileFor(s.Trip), trend.GetValueOrDefault(s.Trip)))
            {
                continue;
            }

            onPoint(new ReplayPoint(context, actual, profileFor(s.Trip)));
            delivered++;
        }

        progress?.Invoke(1);
        return delivered;
    }

    private void Observe((double Time, TripActuals Trip, int Stop, byte Kind) o, LiveStatistics live)
    {
        var times = _schedule.GetStopTimes(o.Trip.Key.TripIndex);
        var stop = times[o.Stop].StopIndex;
        if (o.Kind == 0)
        {
            live.ObserveArrival(stop, _schedule.Trips[o.Trip.Key.TripIndex].RouteIndex, o.Time);
            if (o.Stop > 0 && !double.IsNaN(o.Trip.Departure[o.Stop - 1]))
            {
                live.ObserveTravel(times[o.Stop - 1].StopIndex, stop, o.Time, o.Time - o.Trip.Departure[o.Stop - 1]);
            }
        }
        else if (!double.IsNaN(o.Trip.Arrival[o.Stop]))
        {
            live.ObserveDwell(stop, o.Time, o.Time - o.Trip.Arrival[o.Stop]);
        }
    }

    private bool Fill(PredictionContext ctx, Sample s, TripActuals actual, BoundProfile profile, List<(double Time, double Delay)>? history)
    {
        var times = _schedule.GetStopTimes(s.Trip.TripIndex);
        var n = times.Length;
        if (n < 2)
        {
            return false;
        }

        // Progress from the stop events observed (and known) up to now: an arrival, or a departure where the
        // arrival went unseen (a feed reports a vehicle's latest event; a short dwell may show only its departure).
        var last = 0;
        for (var k = 1; k < n; k++)
        {
            var arrival = actual.Arrival[k];
            var reached = !double.IsNaN(arrival) ? arrival : actual.Departure[k];
            if (!double.IsNaN(reached) && reached <= s.Time && actual.Known(k, reached) <= s.Time)
            {
                last = k;
            }
        }

        if (last >= n - 1)
        {
            return false; // the trip is over
        }

        var departure = actual.Departure[last];
        var atStop = double.IsNaN(departure) || departure > s.Time || actual.Known(last, departure) > s.Time;
        ctx.SetTrip(s.Trip.TripIndex, s.Trip.ServiceDate, s.Offset);
        ctx.NowUnix = s.Time;
        ctx.LastStop = last;
        ctx.AtStop = atStop;
        ctx.LastStopArrivalUnix = last == 0 && atStop ? double.NaN : actual.Arrival[last];
        ctx.LastStopDepartureUnix = atStop ? double.NaN : departure;
        ctx.DistanceAlongMetres = double.IsNaN(s.Odometer) ? double.NaN : times[0].DistanceMetres + s.Odometer;

        var delay = s.Delay;
        if (double.IsNaN(delay))
        {
            // No vehicle-reported delay: the last stop event's deviation from the timetable.
            delay = atStop
                ? (double.IsNaN(ctx.LastStopArrivalUnix) ? 0 : ctx.LastStopArrivalUnix - ctx.ScheduledArrivalUnix(last))
                : departure - ctx.ScheduledDepartureUnix(last);
        }

        ctx.DelaySeconds = delay;
        var trendValue = 0.0;
        if (history is { Count: > 1 })
        {
            var (t0, d0) = history[0];
            for (var i = history.Count - 1; i >= 0; i--)
            {
                if (history[i].Time <= s.Time - _options.TrendWindowSeconds)
                {
                    (t0, d0) = history[i];
                    break;
                }
            }

            if (s.Time - t0 >= 20 && !double.IsNaN(s.Delay))
            {
                trendValue = (s.Delay - d0) / ((s.Time - t0) / 60.0);
            }
        }

        ctx.DelayTrendSecondsPerMinute = trendValue;

        // This vehicle's last few dwells against the historical dwell at the same stops.
        double actualDwell = 0, historicalDwell = 0;
        var seen = 0;
        for (var k = last - (atStop ? 1 : 0); k >= 1 && seen < 3; k--)
        {
            var a = actual.Arrival[k];
            var d = actual.Departure[k];
            if (double.IsNaN(a) || double.IsNaN(d))
            {
                continue;
            }

            var hist = profile.Dwell(times[k].StopIndex, a - ctx.ServiceDayStartUnix);
            if (!hist.HasValue)
            {
                continue;
            }

            actualDwell += d - a;
            historicalDwell += hist.Mean;
            seen++;
        }

        ctx.DwellRatio = historicalDwell > 1 ? actualDwell / historicalDwell : double.NaN;
        return true;
    }

    /// <summary>Builds a historical profile from actual stop times (optionally only the trips <paramref name="include"/> accepts).</summary>
    public static HistoricalProfile BuildProfile(Schedule schedule, ActualStopTimes actuals, Func<TripKey, bool>? include = null)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentNullException.ThrowIfNull(actuals);
        var profile = new HistoricalProfile();
        foreach (var trip in actuals.Trips.Values)
        {
            if (include is not null && !include(trip.Key))
            {
                continue;
            }

            var times = schedule.GetStopTimes(trip.Key.TripIndex);
            var origin = PredictionContext.ToUnix(schedule.ServiceDayStartUtc(trip.Key.ServiceDate));
            for (var k = 1; k < times.Length; k++)
            {
                var dep = trip.Departure[k - 1];
                var arr = trip.Arrival[k];
                if (!double.IsNaN(dep) && !double.IsNaN(arr))
                {
                    profile.AddTravel(schedule.Stops[times[k - 1].StopIndex].Id, schedule.Stops[times[k].StopIndex].Id, dep - origin, arr - dep);
                }

                if (k < times.Length - 1 && !double.IsNaN(arr) && !double.IsNaN(trip.Departure[k]))
                {
                    profile.AddDwell(schedule.Stops[times[k].StopIndex].Id, arr - origin, trip.Departure[k] - arr);
                }
            }
        }

        return profile;
    }
}
