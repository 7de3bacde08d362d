using Fleet.Ingest.Events;
using Fleet.Tracking.Output;
using Fleet.Tracking.Schedule;

namespace Fleet.Tracking.Vehicles;

/// <summary>
/// One vehicle's tracking: orders its events, identifies its trip, matches positions to the trip's shape,
/// computes its delay, detects arrivals and departures, follows journey changes, dead runs and sign-offs, and
/// raises the vehicle-level alerts (off route, stale, severe delay). Pure domain logic, driven by event time only.
/// </summary>
/// <remarks>
/// <para>Trip lifecycle (per vehicle):</para>
/// <code>
///            journey key resolves                       arrival at last stop
///  OffTrip ───────────────────────► OnTrip ───────────────────────────────► Completed
///     ▲                               │  key changes / deadrun / sign-off        │
///     └───────────────────────────────┴──────────────────────────────────────────┘
///                                        (TripEnded with the reason)
/// </code>
/// <para>Arrivals and departures come from the feed's stop events (ARS/ARR for arrival, PDE/DEP for departure,
/// PAS for both) once the vehicle has sent any; otherwise from positions: arrival when the vehicle stands in the
/// stop's zone (or the interpolated moment it passes the stop), departure the last moment it stood there. Stops the
/// events skip are filled from the positions.</para>
/// <para>Not thread-safe: one tracker belongs to one vehicle entity (one shard thread).</para>
/// </remarks>
public sealed class VehicleTracker
{
    private const double MatchedMetres = 60;
    private readonly ITripCatalog _catalog;
    private readonly TrackingOptions _options;
    private readonly IArrivalPredictor? _predictor;
    private readonly EventReorderBuffer _buffer;
    private readonly List<VehicleEvent> _released = [];
    private readonly List<StopPrediction> _predictions = [];
    private readonly VehicleTrackerState _s;
    private readonly double _zone;
    private TripPlan? _plan;
    private TripKey _unmatchedKey;
    private long _ingest; // the ingest timestamp of the event being processed

    /// <summary>Creates a tracker for <paramref name="vehicleId"/>.</summary>
    public VehicleTracker(string vehicleId, ITripCatalog catalog, TrackingOptions options, IArrivalPredictor? predictor = null)
        : this(new VehicleTrackerState { VehicleId = vehicleId }, catalog, options, predictor)
    {
    }

    /// <summary>Creates a tracker that resumes from <paramref name="state"/> (a snapshot).</summary>
    public VehicleTracker(VehicleTrackerState state, ITripCatalog catalog, TrackingOptions options, IArrivalPredictor? predictor = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        _s = state;
        _catalog = catalog;
        _options = options;
        _predictor = predictor;
        _zone = options.StopZoneMetres;
        _buffer = new EventReorderBuffer(options.Lateness, options.LateTolerance);
        _buffer.Restore(Utc(state.ReleasedTicks), Utc(state.MaxSeenTicks), state.LateEvents, state.DuplicateEvents, state.AcceptedEvents, state.CorrectedEvents);
        foreach (var e in state.Pending)
        {
            _buffer.Add(e);
        }

        if (state.TripId is not null && !catalog.TryGet(state.TripId, state.TripDate, Utc(state.ProgressTicks), out _plan!))
        {
            _plan = null;
            state.TripId = null;
        }
    }

    /// <summary>The vehicle id.</summary>
    public string VehicleId => _s.VehicleId;

    /// <summary>The trip the vehicle is on, or null.</summary>
    public TripPlan? Trip => _plan;

    /// <summary>Current delay in seconds (positive late), or null when unknown.</summary>
    public int? DelaySeconds => _plan is not null && _s.HasDelay ? _s.DelaySeconds : null;

    /// <summary>Distance along the trip's path, or -1.</summary>
    public double Progress => _s.Progress;

    /// <summary>Events dropped as too late.</summary>
    public long LateEvents => _buffer.Late;

    /// <summary>Duplicates dropped.</summary>
    public long DuplicateEvents => _buffer.Duplicates;

    /// <summary>Late events within the tolerance, tracked in the newest event's place (see <see cref="EventReorderBuffer"/>).</summary>
    public long CorrectedEvents => _buffer.Corrected;

    /// <summary>Journeys the catalog could not resolve.</summary>
    public long UnmatchedJourneys => _s.UnmatchedJourneys;

    /// <summary>The newest event time received.</summary>
    public DateTime LastMessage => Utc(_s.LastMessageTicks);

    /// <summary>Takes an event: buffers it and processes everything the reorder window releases.</summary>
    public void Accept(in VehicleEvent e, ITrackingOutput output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (e.Type == EventType.TripUpdateStop)
        {
            return; // trip-level: routed to the trip, not the vehicle
        }

        if (e.Source == EventSource.GtfsRt && _s.HfpSeen)
        {
            // The agency's copy of a vehicle tracked from HFP: ignored when processed too (see Process), and kept out
            // of the reorder buffer, whose clock it would move past HFP messages still on their way (a tunnel burst).
            return;
        }

        if (!_buffer.Add(e))
        {
            return;
        }

        if (e.EventTime.Ticks > _s.LastMessageTicks)
        {
            _s.LastMessageTicks = e.EventTime.Ticks;
        }

        _released.Clear();
        _buffer.Release(DateTime.MinValue, _released);
        ProcessReleased(output);
    }

    /// <summary>Moves the vehicle's clock to the stream's event time: releases held events and checks staleness.</summary>
    public void AdvanceClock(DateTime streamTime, ITrackingOutput output)
    {
        ArgumentNullException.ThrowIfNull(output);
        _released.Clear();
        _buffer.Release(streamTime, _released);
        ProcessReleased(output);
        if (_plan is not null && !_s.StaleAlerted && _s.LastMessageTicks > 0 &&
            streamTime - Utc(_s.LastMessageTicks) > _options.StaleAfter)
        {
            _s.StaleAlerted = true;
            output.Publish(Alert(Utc(_s.LastMessageTicks) + _options.StaleAfter, AlertKind.Stale, cleared: false, value: null));
        }
    }

    /// <summary>End of stream: processes every held event.</summary>
    public void Flush(ITrackingOutput output)
    {
        ArgumentNullException.ThrowIfNull(output);
        _released.Clear();
        _buffer.Flush(_released);
        ProcessReleased(output);
    }

    /// <summary>End of stream: processes every held event and settles an ARR still waiting for its ARS.</summary>
    public void Complete(ITrackingOutput output)
    {
        Flush(output);
        if (_plan is not null && _s.PendingArrStop >= 0)
        {
            FlushPendingArr(-1, output);
        }

        if (_plan is null && _s.VisitStop is not null && _s.PendingArrTicks != 0 && !_s.VisitArrived)
        {
            _s.VisitArrived = true;
            output.Publish(VisitEvent(DerivedEventType.Arrival, Utc(_s.PendingArrTicks)));
        }
    }

    /// <summary>The source sequence number of the last event applied (0 when its source has none); see <c>VehiclePartition</c>.</summary>
    public long LastSequence
    {
        get => _s.LastSequence;
        set => _s.LastSequence = value;
    }

    /// <summary>The state to snapshot (copies the reorder buffer's content into it).</summary>
    public VehicleTrackerState CaptureState()
    {
        _s.ReleasedTicks = _buffer.ReleasedUpTo.Ticks;
        _s.MaxSeenTicks = _buffer.MaxSeen.Ticks;
        _s.LateEvents = _buffer.Late;
        _s.DuplicateEvents = _buffer.Duplicates;
        _s.AcceptedEvents = _buffer.Accepted;
        _s.CorrectedEvents = _buffer.Corrected;
        _s.Pending = _buffer.Snapshot();
        return _s;
    }

    private void ProcessReleased(ITrackingOutput output)
    {
        for (var i = 0; i < _released.Count; i++)
        {
            Process(_released[i], output);
        }
    }

    private void Process(in VehicleEvent e, ITrackingOutput output)
    {
        var t = e.EventTime;
        _ingest = e.IngestTimestamp;
        if (e.Mode != TransportMode.Unknown)
        {
            _s.Mode = e.Mode;
        }

        if (_s.StaleAlerted)
        {
            _s.StaleAlerted = false;
            if (_plan is not null)
            {
                output.Publish(Alert(t, AlertKind.Stale, cleared: true, value: null));
            }
        }

        // Dead runs and sign-offs end the journey.
        if (e.Journey is JourneyType.Deadrun or JourneyType.Signoff || e.Type is EventType.Vjout or EventType.Dout or EventType.Bout)
        {
            if (_plan is not null)
            {
                EndTrip(t, e.Journey switch
                {
                    JourneyType.Deadrun => "deadrun",
                    JourneyType.Signoff => "signoff",
                    _ => "signoff",
                }, output);
            }

            if (e.Type == EventType.Vjout)
            {
                _s.EndedKey = _s.Key;
            }

            return;
        }

        // A vehicle on HFP is tracked from HFP alone: the agency's GTFS-RT positions repeat the same vehicle less often
        // and can lag a journey behind around trip changes.
        if (e.Source == EventSource.Hfp)
        {
            _s.HfpSeen = true;
        }
        else if (_s.HfpSeen)
        {
            return;
        }

        // Each source names the journey its own way (HFP by route and start, GTFS-RT by trip_id): a key is compared
        // with the last key of the same source, and a new key that resolves to the current trip changes nothing.
        var key = TripKey.Of(e);
        if (key.IsKnown && !SameJourney(key, e.Source == EventSource.GtfsRt ? _s.RtKey : _s.Key))
        {
            var plan = Resolve(key, e.EventTime);
            if (plan is null || !ReferenceEquals(plan, _plan))
            {
                if (_plan is not null)
                {
                    EndTrip(t, "journey-change", output); // remembers the old key as ended
                }

                var ended = plan is not null && plan.TripId == _s.EndedTripId && plan.ServiceDate == _s.EndedTripDate;
                if (!ended && !SameJourney(key, _s.EndedKey))
                {
                    StartTrip(key, plan, e, output);
                }
            }

            if (e.Source == EventSource.GtfsRt)
            {
                _s.RtKey = key;
            }
            else
            {
                _s.Key = key;
            }
        }

        if (_plan is null && key.IsKnown && _options.UseStopEvents && e.StopId is not null && IsStopEvent(e.Type) &&
            !SameJourney(_s.Key, _s.EndedKey))
        {
            OnUnscheduledStopEvent(e, output);
            return;
        }

        if (_plan is null || _s.Progress < -1.5)
        {
            return; // off trip, or the trip is completed (Progress -2)
        }

        if (e.HasPosition)
        {
            OnPosition(e, output);
        }

        if (_plan is not null && _options.UseStopEvents && e.StopId is not null && IsStopEvent(e.Type))
        {
            OnStopEvent(e, output);
        }
    }

    /// <summary>
    /// A journey the schedule does not know (or no schedule at all): stop visits still come from the feed's stop
    /// events, named by the feed's stop id, without a trip_id.
    /// </summary>
    private void OnUnscheduledStopEvent(in VehicleEvent e, ITrackingOutput output)
    {
        var t = e.EventTime;
        if (!string.Equals(_s.VisitStop, e.StopId, StringComparison.Ordinal))
        {
            if (_s.VisitStop is not null && !_s.VisitArrived && _s.PendingArrTicks != 0)
            {
                output.Publish(VisitEvent(DerivedEventType.Arrival, Utc(_s.PendingArrTicks)));
            }

            _s.VisitStop = e.StopId;
            _s.VisitRoute = e.RouteId;
            _s.VisitDirection = e.DirectionId;
            _s.VisitArrived = false;
            _s.VisitDeparted = false;
            _s.PendingArrTicks = 0;
        }

        switch (e.Type)
        {
            case EventType.Arr:
                if (!_s.VisitArrived && _s.PendingArrTicks == 0)
                {
                    _s.PendingArrTicks = t.Ticks;
                }

                break;
            case EventType.Ars:
            case EventType.Pas:
                if (!_s.VisitArrived)
                {
                    _s.VisitArrived = true;
                    output.Publish(VisitEvent(DerivedEventType.Arrival, t));
                }

                if (e.Type == EventType.Pas && !_s.VisitDeparted)
                {
                    _s.VisitDeparted = true;
                    output.Publish(VisitEvent(DerivedEventType.Departure, t));
                }

                break;
            default: // PDE, DEP
                if (!_s.VisitArrived)
                {
                    _s.VisitArrived = true;
                    output.Publish(VisitEvent(DerivedEventType.Arrival, _s.PendingArrTicks != 0 ? Utc(_s.PendingArrTicks) : t));
                }

                if (!_s.VisitDeparted)
                {
                    _s.VisitDeparted = true;
                    output.Publish(VisitEvent(DerivedEventType.Departure, t));
                }

                break;
        }
    }

    private DerivedEvent VisitEvent(DerivedEventType type, DateTime t) => new()
    {
        Type = type,
        Time = t,
        VehicleId = _s.VehicleId,
        RouteId = _s.VisitRoute,
        DirectionId = _s.VisitDirection,
        StopId = _s.VisitStop,
        Source = DetectionSource.StopEvent,
        Mode = _s.Mode,
    };

    private static bool IsStopEvent(EventType type) =>
        type is EventType.Arr or EventType.Ars or EventType.Pas or EventType.Pde or EventType.Dep;

    private static bool SameJourney(in TripKey a, in TripKey b) =>
        a.TripId is not null || b.TripId is not null
            ? string.Equals(a.TripId, b.TripId, StringComparison.Ordinal) && a.Day == b.Day
            : string.Equals(a.RouteId, b.RouteId, StringComparison.Ordinal) && a.DirectionId == b.DirectionId &&
              a.Day == b.Day && a.StartSeconds == b.StartSeconds;

    private TripPlan? Resolve(in TripKey key, DateTime near)
    {
        TripPlan? plan;
        var found = key.TripId is not null
            ? _catalog.TryGet(key.TripId, key.Day, near, out plan)
            : _catalog.TryFind(key.RouteId!, key.DirectionId, key.Day!.Value, key.StartSeconds, out plan);
        return found ? plan : null;
    }

    private void StartTrip(in TripKey key, TripPlan? plan, in VehicleEvent e, ITrackingOutput output)
    {
        if (plan is null)
        {
            if (!SameJourney(key, _unmatchedKey))
            {
                _unmatchedKey = key;
                _s.UnmatchedJourneys++;
            }

            return;
        }

        _plan = plan;
        var n = plan.Stops.Count;
        _s.TripId = plan.TripId;
        _s.TripDate = plan.ServiceDate;
        _s.Progress = -1;
        _s.ProgressTicks = 0;
        _s.NextStop = 0;
        _s.AtStop = -1;
        _s.LastStandingTicks = 0;
        _s.LastEmitted = -1;
        _s.Arrivals = new long[n];
        _s.Departures = new long[n];
        _s.PositionArrivals = new long[n];
        _s.PositionDepartures = new long[n];
        _s.PendingArrStop = -1;
        _s.HasDelay = false;
        _s.OffRouteSinceTicks = 0;
        _s.OffRouteAlerted = false;
        _s.SevereDelayAlerted = false;
        _s.LastPredictionTicks = 0;
        _s.LastPredictionDelay = 0;
        output.Publish(TripEvent(DerivedEventType.TripStarted, e.EventTime, plan) with { Scheduled = plan.Start });
    }

    private void EndTrip(DateTime t, string reason, ITrackingOutput output)
    {
        var plan = _plan!;
        if (_s.OffRouteAlerted)
        {
            output.Publish(Alert(t, AlertKind.OffRoute, cleared: true, value: null));
        }

        if (_s.SevereDelayAlerted)
        {
            output.Publish(Alert(t, AlertKind.SevereDelay, cleared: true, value: null));
        }

        output.Publish(TripEvent(DerivedEventType.TripEnded, t, plan) with
        {
            DelaySeconds = _s.HasDelay ? _s.DelaySeconds : null,
            Other = reason,
        });
        _plan = null;
        _s.TripId = null;
        _s.EndedKey = _s.Key;
        _s.EndedTripId = plan.TripId;
        _s.EndedTripDate = plan.ServiceDate;
        _s.OffRouteAlerted = false;
        _s.SevereDelayAlerted = false;
    }

    private void OnPosition(in VehicleEvent e, ITrackingOutput output)
    {
        var plan = _plan!;
        var t = e.EventTime;
        _s.Latitude = e.Latitude;
        _s.Longitude = e.Longitude;
        double from, to;
        var prev = _s.Progress;
        var prevTime = Utc(_s.ProgressTicks);
        if (prev < 0)
        {
            from = 0;
            to = double.PositiveInfinity;
        }
        else
        {
            var dt = Math.Max(1, (t - prevTime).TotalSeconds);
            from = Math.Max(0, prev - 50);
            to = prev + Math.Max(400, 40 * dt);
        }

        var m = plan.Path.Project(e.Latitude, e.Longitude, from, to);
        OffRoute(t, m.OffMetres, output);
        if (m.OffMetres > MatchedMetres)
        {
            return; // too far from the shape to say where along it the vehicle is
        }

        var along = Math.Max(m.AlongMetres, prev);
        var standing = !float.IsNaN(e.Speed)
            ? e.Speed < _options.StandingSpeed
            : prev >= 0 && t > prevTime && (along - prev) / (t - prevTime).TotalSeconds < _options.StandingSpeed;
        if (prev < 0)
        {
            // First fix of the trip: stops already behind the vehicle are not detected from positions.
            var first = 0;
            while (first < plan.Stops.Count - 1 && plan.Stops[first].DistanceMetres + _zone < along)
            {
                first++;
            }

            _s.NextStop = first;
            prev = along;
            prevTime = t;
        }

        _s.Progress = along;
        _s.ProgressTicks = t.Ticks;
        DetectFromPositions(prev, prevTime, along, t, standing, output);
        if (_plan is null || _s.Progress < -1.5)
        {
            return;
        }

        _s.DelaySeconds = (int)Math.Round((t - plan.ScheduledAt(along, t, _zone)).TotalSeconds);
        _s.HasDelay = true;
        SevereDelay(t, output);
        if (_options.EmitVehicleStates)
        {
            output.Publish(new DerivedEvent
            {
                Type = DerivedEventType.VehicleState,
                Time = t,
                VehicleId = _s.VehicleId,
                TripId = plan.TripId,
                RouteId = plan.RouteId,
                DirectionId = plan.DirectionId,
                Mode = _s.Mode,
                DelaySeconds = _s.DelaySeconds,
                Value = along,
                Latitude = e.Latitude,
                Longitude = e.Longitude,
            });
        }

        // Recompute when the state changed materially (the policy): every PredictionInterval of event time,
        // or sooner when the delay moved by more than PredictionDelayChangeSeconds; departures trigger it too.
        if (_predictor is not null &&
            (t - Utc(_s.LastPredictionTicks) >= _options.PredictionInterval ||
             Math.Abs(_s.DelaySeconds - _s.LastPredictionDelay) > _options.PredictionDelayChangeSeconds))
        {
            Predict(t, double.IsNaN(e.Speed) ? double.NaN : e.Speed, output);
        }
    }

    private void DetectFromPositions(double p0, DateTime t0, double p1, DateTime t1, bool standing, ITrackingOutput output)
    {
        var stops = _plan!.Stops;
        var last = stops.Count - 1;
        var emit = !_s.StopEventsMode;
        while (true)
        {
            if (_s.AtStop >= 0)
            {
                var k = _s.AtStop;
                var d = stops[k].DistanceMetres;
                if (standing && p1 <= d + _zone)
                {
                    _s.LastStandingTicks = t1.Ticks;
                }

                if (p1 <= d + _zone)
                {
                    return;
                }

                var dep = _s.LastStandingTicks > 0 ? Utc(_s.LastStandingTicks) : Cross(p0, t0, p1, t1, d + _zone);
                _s.PositionDepartures[k] = dep.Ticks;
                _s.AtStop = -1;
                if (k == 0)
                {
                    _s.PositionArrivals[0] = dep.Ticks;
                    if (emit)
                    {
                        EmitArrival(0, dep, DetectionSource.Position, output);
                    }
                }

                if (emit)
                {
                    EmitDeparture(k, dep, DetectionSource.Position, output);
                }

                continue;
            }

            if (_s.NextStop > last)
            {
                return;
            }

            var next = _s.NextStop;
            var dn = stops[next].DistanceMetres;
            var isLast = next == last;
            if (p1 < dn - _zone || (isLast && p1 < Math.Min(dn, _plan.Path.LengthMetres) - 5 && !standing))
            {
                return;
            }

            if (standing && p1 <= dn + _zone)
            {
                // Stopped at the stop: arrival is the first standing fix in its zone. At the first stop the vehicle
                // waits for its departure time; its arrival there is its departure (set when it leaves).
                _s.NextStop = next + 1;
                _s.AtStop = next;
                _s.LastStandingTicks = t1.Ticks;
                if (next == 0)
                {
                    continue;
                }

                _s.PositionArrivals[next] = t1.Ticks;
                if (emit)
                {
                    EmitArrival(next, t1, DetectionSource.Position, output);
                    if (_plan is null || _s.Progress < -1.5)
                    {
                        return;
                    }
                }

                continue;
            }

            if (p1 > dn + _zone || isLast)
            {
                // Passed without standing (or reached the end of the path): the moment it crossed the stop.
                var at = Cross(p0, t0, p1, t1, isLast ? Math.Min(dn, p1) : dn);
                _s.PositionArrivals[next] = at.Ticks;
                _s.PositionDepartures[next] = at.Ticks;
                _s.NextStop = next + 1;
                if (emit)
                {
                    EmitArrival(next, at, DetectionSource.Position, output);
                    if (_plan is null || _s.Progress < -1.5)
                    {
                        return;
                    }

                    EmitDeparture(next, at, DetectionSource.Position, output);
                }

                continue;
            }

            return; // moving inside the zone: wait to see whether it stops
        }
    }

    private static DateTime Cross(double p0, DateTime t0, double p1, DateTime t1, double x)
    {
        if (p1 <= p0 || t1 <= t0)
        {
            return t1;
        }

        var f = Math.Clamp((x - p0) / (p1 - p0), 0, 1);
        return t0.AddTicks((long)(f * (t1 - t0).Ticks));
    }

    private void OnStopEvent(in VehicleEvent e, ITrackingOutput output)
    {
        var plan = _plan!;
        var k = plan.IndexOfStop(e.StopId!, Math.Max(0, _s.LastEmitted));
        if (k < 0)
        {
            return;
        }

        _s.StopEventsMode = true;
        var t = e.EventTime;
        switch (e.Type)
        {
            case EventType.Arr:
                if (_s.Arrivals[k] == 0)
                {
                    FlushPendingArr(k, output);
                    _s.PendingArrStop = k;
                    _s.PendingArrTicks = t.Ticks;
                }

                break;
            case EventType.Ars:
                FlushPendingArr(k, output);
                EmitArrival(k, t, DetectionSource.StopEvent, output);
                break;
            case EventType.Pas:
                FlushPendingArr(k, output);
                EmitArrival(k, t, DetectionSource.StopEvent, output);
                EmitDeparture(k, t, DetectionSource.StopEvent, output);
                break;
            case EventType.Pde:
            case EventType.Dep:
                if (_s.Departures[k] != 0)
                {
                    break;
                }

                if (_s.Arrivals[k] == 0)
                {
                    var arr = _s.PendingArrStop == k ? Utc(_s.PendingArrTicks) : t;
                    _s.PendingArrStop = -1;
                    EmitArrival(k, arr, DetectionSource.StopEvent, output);
                }

                FlushPendingArr(k, output);
                EmitDeparture(k, t, DetectionSource.StopEvent, output);
                break;
        }
    }

    /// <summary>An ARR for another stop whose ARS never came becomes that stop's arrival.</summary>
    private void FlushPendingArr(int current, ITrackingOutput output)
    {
        var p = _s.PendingArrStop;
        if (p < 0 || p == current)
        {
            if (p == current)
            {
                _s.PendingArrStop = -1;
            }

            return;
        }

        _s.PendingArrStop = -1;
        EmitArrival(p, Utc(_s.PendingArrTicks), DetectionSource.StopEvent, output);
    }

    private void EmitArrival(int k, DateTime t, DetectionSource source, ITrackingOutput output)
    {
        var plan = _plan!;
        if (_s.Arrivals[k] != 0)
        {
            return;
        }

        FillGap(k, t, output);
        _s.Arrivals[k] = t.Ticks;
        if (k > _s.LastEmitted)
        {
            _s.LastEmitted = k;
        }

        var stop = plan.Stops[k];
        var scheduled = k == 0 ? stop.Departure : stop.Arrival;
        _s.DelaySeconds = (int)Math.Round((t - scheduled).TotalSeconds);
        _s.HasDelay = true;
        var headway = plan.ScheduledHeadwaySeconds(k);
        output.Publish(StopEvent(DerivedEventType.Arrival, k, t, scheduled, source) with
        {
            ScheduledHeadwaySeconds = headway >= 0 ? headway : null,
        });
        SevereDelay(t, output);
        if (k == plan.Stops.Count - 1)
        {
            _s.Departures[k] = t.Ticks;
            output.Publish(StopEvent(DerivedEventType.Departure, k, t, stop.Departure, source));
            EndTrip(t, "completed", output);
            _s.Progress = -2;
        }
    }

    private void EmitDeparture(int k, DateTime t, DetectionSource source, ITrackingOutput output)
    {
        var plan = _plan;
        if (plan is null || _s.Departures[k] != 0 || _s.Arrivals[k] == 0)
        {
            return;
        }

        _s.Departures[k] = t.Ticks;
        var scheduled = plan.Stops[k].Departure;
        _s.DelaySeconds = (int)Math.Round((t - scheduled).TotalSeconds);
        _s.HasDelay = true;
        output.Publish(StopEvent(DerivedEventType.Departure, k, t, scheduled, source));
        if (_predictor is not null && t.Ticks > _s.LastPredictionTicks)
        {
            Predict(t, double.NaN, output);
        }
    }

    /// <summary>Before an arrival at stop k, stops the events skipped get their position-detected times.</summary>
    private void FillGap(int k, DateTime t, ITrackingOutput output)
    {
        if (!_s.StopEventsMode)
        {
            return;
        }

        var plan = _plan!;
        for (var j = _s.LastEmitted + 1; j < k; j++)
        {
            var a = _s.PositionArrivals[j];
            if (_s.Arrivals[j] != 0 || a == 0 || a > t.Ticks)
            {
                continue;
            }

            _s.Arrivals[j] = a;
            var headway = plan.ScheduledHeadwaySeconds(j);
            output.Publish(StopEvent(DerivedEventType.Arrival, j, Utc(a), j == 0 ? plan.Stops[j].Departure : plan.Stops[j].Arrival, DetectionSource.Position) with
            {
                ScheduledHeadwaySeconds = headway >= 0 ? headway : null,
            });
            var d = _s.PositionDepartures[j];
            if (d != 0 && d <= t.Ticks)
            {
                _s.Departures[j] = d;
                output.Publish(StopEvent(DerivedEventType.Departure, j, Utc(d), plan.Stops[j].Departure, DetectionSource.Position));
            }
        }
    }

    private DerivedEvent StopEvent(DerivedEventType type, int k, DateTime t, DateTime scheduled, DetectionSource source)
    {
        var plan = _plan!;
        return TripEvents.AtStop(plan, plan.Stops[k], type, t, scheduled, _s.VehicleId, ModeOn(plan), source);
    }

    private void OffRoute(DateTime t, double off, ITrackingOutput output)
    {
        if (off > _options.OffRouteMetres)
        {
            if (_s.OffRouteSinceTicks == 0)
            {
                _s.OffRouteSinceTicks = t.Ticks;
            }
            else if (!_s.OffRouteAlerted && t - Utc(_s.OffRouteSinceTicks) > _options.OffRouteFor)
            {
                _s.OffRouteAlerted = true;
                output.Publish(Alert(t, AlertKind.OffRoute, cleared: false, value: Math.Round(off, 1)));
            }
        }
        else
        {
            _s.OffRouteSinceTicks = 0;
            if (_s.OffRouteAlerted)
            {
                _s.OffRouteAlerted = false;
                output.Publish(Alert(t, AlertKind.OffRoute, cleared: true, value: Math.Round(off, 1)));
            }
        }
    }

    private void SevereDelay(DateTime t, ITrackingOutput output)
    {
        if (_plan is null)
        {
            return;
        }

        var limit = _options.SevereDelaySeconds;
        if (!_s.SevereDelayAlerted && _s.DelaySeconds > limit)
        {
            _s.SevereDelayAlerted = true;
            output.Publish(Alert(t, AlertKind.SevereDelay, cleared: false, value: _s.DelaySeconds));
        }
        else if (_s.SevereDelayAlerted && _s.DelaySeconds < limit - 60)
        {
            _s.SevereDelayAlerted = false;
            output.Publish(Alert(t, AlertKind.SevereDelay, cleared: true, value: _s.DelaySeconds));
        }
    }

    // One prediction round: the vehicle's whole forecast at t (PredictionRound.Publish), followed by a PredictionRound
    // marker that retires whatever an earlier round said and this one does not (a stop passed meanwhile, a trip left).
    private void Predict(DateTime t, double speed, ITrackingOutput output)
    {
        var plan = _plan!;
        _s.LastPredictionTicks = t.Ticks;
        var next = Math.Max(_s.LastEmitted + 1, 0);
        if (_s.Progress >= 0)
        {
            // Stops already behind the vehicle's matched position are not predicted, detected or not (a vehicle that
            // joins mid-trip has passed the first stops before anyone heard from it).
            while (next < plan.Stops.Count - 1 && plan.Stops[next].DistanceMetres + _zone < _s.Progress)
            {
                next++;
            }
        }

        _predictions.Clear();
        if (next < plan.Stops.Count)
        {
            var delay = _s.HasDelay ? _s.DelaySeconds : 0;
            _s.LastPredictionDelay = delay;
            var progress = new VehicleProgress(_s.VehicleId, plan, t, Math.Max(0, _s.Progress), next, delay, speed)
            {
                Arrivals = _s.Arrivals,
                Departures = _s.Departures,
                HasPosition = _s.Progress >= 0,
            };
            _predictor!.Predict(progress, _predictions);
            PredictionRound.Order(_predictions);
        }

        PredictionRound.Publish(_predictions, plan, t, _s.VehicleId, _s.Mode, _ingest, output);
        output.Publish(TripEvent(DerivedEventType.PredictionRound, t, plan) with { Value = _predictions.Count });
    }

    // An event about this vehicle on a trip (its start, its end, a prediction round's end).
    private DerivedEvent TripEvent(DerivedEventType type, DateTime t, TripPlan plan) => TripEvents.On(plan, type, t, _s.VehicleId, ModeOn(plan));

    // The vehicle's own mode when its reports say it, else the trip's.
    private TransportMode ModeOn(TripPlan plan) => _s.Mode != TransportMode.Unknown ? _s.Mode : plan.Mode;

    private DerivedEvent Alert(DateTime t, AlertKind kind, bool cleared, double? value)
    {
        var plan = _plan;
        return new DerivedEvent
        {
            Type = DerivedEventType.Alert,
            Time = t,
            VehicleId = _s.VehicleId,
            TripId = plan?.TripId,
            RouteId = plan?.RouteId,
            DirectionId = plan?.DirectionId ?? -1,
            ServiceDate = plan?.ServiceDate,
            Kind = kind,
            Cleared = cleared,
            Value = value,
            DelaySeconds = _s.HasDelay ? _s.DelaySeconds : null,
            Mode = _s.Mode,
            Latitude = _s.Latitude,
            Longitude = _s.Longitude,
        };
    }

    private static DateTime Utc(long ticks) => new(ticks, DateTimeKind.Utc);
}
