using Fleet.Ingest.Events;
using Fleet.Tracking.Output;
using Fleet.Tracking.Schedule;
using Fleet.Tracking.Vehicles;

namespace Fleet.Tracking.Network;

/// <summary>What the trip board knows about one trip: the schedule, the vehicle on it, and its GTFS-RT updates.</summary>
/// <param name="TripId">trip_id.</param>
/// <param name="ServiceDate">Service date, when known.</param>
/// <param name="RouteId">route_id.</param>
/// <param name="InSchedule">True when the trip joined the static schedule.</param>
/// <param name="VehicleId">The vehicle on the trip (from HFP positions or the update), if any.</param>
/// <param name="Cancelled">True when a TripUpdate cancelled it.</param>
/// <param name="ObservedDelaySeconds">Delay at the last observed arrival or departure.</param>
/// <param name="LastObservedStopSequence">stop_sequence of that observation; -1 when none.</param>
/// <param name="Updates">Latest GTFS-RT stop time updates, by stop_sequence (or by order when the feed gives none).</param>
/// <param name="SkippedStops">stop_ids the updates skip.</param>
public sealed record TripView(
    string TripId, DateOnly? ServiceDate, string? RouteId, bool InSchedule, string? VehicleId, bool Cancelled,
    int? ObservedDelaySeconds, int LastObservedStopSequence, IReadOnlyList<StopUpdate> Updates, IReadOnlyList<string> SkippedStops);

/// <summary>
/// The trip entities' state in one place: per trip, the join of what vehicles observed (HFP) with the GTFS-RT
/// TripUpdates and the static schedule; raises cancelled-trip and skipped-stop alerts.
/// </summary>
/// <remarks>Updates come from one owner; queries (<see cref="TryGet"/>) may come from any thread (a lock guards the map).</remarks>
public sealed class TripBoard
{
    private readonly Lock _gate = new();
    private readonly ITripCatalog _catalog;
    private readonly Dictionary<string, TripRecord> _trips = new(StringComparer.Ordinal);
    private readonly bool _stopEvents;
    private readonly IArrivalPredictor? _predictor;
    private readonly List<StopPrediction> _predictions = [];
    // Trips tracked from stop events whose prediction round is due at the end of this batch of updates.
    private readonly List<TripRecord> _due = [];
    // Trips a vehicle position named before any update did (bounded: cleared when it grows past this many).
    private readonly HashSet<string> _positionsFirst = new(StringComparer.Ordinal);
    private const int MaxPositionsFirst = 100_000;

    /// <summary>The vehicle id a trip tracked from stop events is shown as when the feed names no vehicle: this prefix and
    /// the trip_id.</summary>
    public const string TripVehiclePrefix = "trip:";

    /// <summary>Creates a board over a catalog.</summary>
    /// <param name="catalog">The schedule's trips.</param>
    /// <param name="stopEvents">Derive arrivals and departures from the updates' observed stop times, for trips no
    /// vehicle tracks (<see cref="TrackingOptions.TripUpdateStopEvents"/>).</param>
    /// <param name="predictor">With <paramref name="stopEvents"/>: predicts such a trip's downstream stops at every poll
    /// (from its observed stop times, as the model was trained on TripUpdates days); when it learns
    /// (<see cref="IStopObserver"/>), it is shown the observed arrivals and departures. Null: no predictions.</param>
    public TripBoard(ITripCatalog catalog, bool stopEvents = false, IArrivalPredictor? predictor = null)
    {
        _catalog = catalog;
        _stopEvents = stopEvents;
        _predictor = predictor;
    }

    /// <summary>Arrivals and departures derived from the updates' observed stop times.</summary>
    public long StopEventsObserved { get; private set; }

    /// <summary>Stop time updates received.</summary>
    public long UpdatesReceived { get; private set; }

    /// <summary>Distinct trips named by updates that joined the schedule.</summary>
    public int TripsMatched { get; private set; }

    /// <summary>Distinct trips named by updates that are not in the schedule.</summary>
    public int TripsUnmatched { get; private set; }

    /// <summary>Updates whose stop was found on the scheduled trip.</summary>
    public long StopsMatched { get; private set; }

    /// <summary>Updates whose stop was not found on the scheduled trip (or whose trip is unknown).</summary>
    public long StopsUnmatched { get; private set; }

    /// <summary>Trips on the board.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _trips.Count;
            }
        }
    }

    /// <summary>A copy of one trip's record.</summary>
    public bool TryGet(string tripId, out TripView view)
    {
        lock (_gate)
        {
            if (_trips.TryGetValue(tripId, out var r))
            {
                view = r.ToView();
                return true;
            }
        }

        view = null!;
        return false;
    }

    /// <summary>trip_ids on the board, sorted.</summary>
    public IReadOnlyList<string> TripIds()
    {
        lock (_gate)
        {
            var ids = _trips.Keys.ToList();
            ids.Sort(StringComparer.Ordinal);
            return ids;
        }
    }

    internal void OnTripStarted(DerivedEvent d)
    {
        lock (_gate)
        {
            var r = Get(d.TripId!, d.ServiceDate, d.RouteId, d.Time, out _);
            r.VehicleId = d.VehicleId;
            r.VehicleTracked = true; // from here on the vehicle's own tracking detects the stops
        }
    }

    internal void OnTripEnded(DerivedEvent d)
    {
        lock (_gate)
        {
            if (_trips.TryGetValue(d.TripId!, out var r) && r.VehicleId == d.VehicleId && d.Other != "completed")
            {
                r.VehicleId = null;
                r.VehicleTracked = false; // the vehicle left the trip: its stop events may come from TripUpdates again
            }
        }
    }

    internal void OnObserved(DerivedEvent d)
    {
        if (d.TripId is null)
        {
            return; // a stop visit of a journey the schedule does not know
        }

        lock (_gate)
        {
            var r = Get(d.TripId!, d.ServiceDate, d.RouteId, d.Time, out _);
            r.ObservedDelay = d.DelaySeconds;
            r.LastObservedSequence = d.StopSequence;
            if (d.VehicleId is { } vehicle && !vehicle.StartsWith(TripVehiclePrefix, StringComparison.Ordinal))
            {
                r.VehicleId ??= vehicle;
            }
        }
    }

    /// <summary>A position of a vehicle on <paramref name="tripId"/> reached tracking: the trip's stops come from the
    /// vehicle's own tracking from now on, not from TripUpdates' stop events.</summary>
    internal void OnVehiclePosition(string tripId)
    {
        lock (_gate)
        {
            if (_trips.TryGetValue(tripId, out var r))
            {
                r.VehicleTracked = true;
            }
            else
            {
                if (_positionsFirst.Count >= MaxPositionsFirst)
                {
                    _positionsFirst.Clear();
                }

                _positionsFirst.Add(tripId);
            }
        }
    }

    // The prediction rounds due after a batch of updates (one per trip tracked from stop events whose updates observed a
    // stop or came with a newer poll), or null.
    internal List<DerivedEvent>? EndOfStopUpdates()
    {
        lock (_gate)
        {
            if (_due.Count == 0)
            {
                return null;
            }

            var rounds = new ListOutput();
            foreach (var r in _due)
            {
                r.RoundDue = false;
                if (!r.Cancelled && !r.VehicleTracked && r.Plan is { } trip)
                {
                    Predict(r, trip, r.LastPrediction, rounds);
                }
            }

            _due.Clear();
            return rounds.Events;
        }
    }

    // Returns the arrivals and departures the update observed (with stop events on), or null.
    internal List<DerivedEvent>? OnStopUpdate(in StopUpdate u, StopBoard stops, ITrackingOutput output)
    {
        lock (_gate)
        {
            UpdatesReceived++;
            var r = Get(u.TripId, u.ServiceDate, u.RouteId, u.Time, out var created);
            if (created)
            {
                if (r.Plan is not null)
                {
                    TripsMatched++;
                }
                else
                {
                    TripsUnmatched++;
                }
            }

            if (u.VehicleId is not null)
            {
                r.VehicleId ??= u.VehicleId;
            }

            if (u.Status == StopUpdateStatus.TripCancelled)
            {
                if (!r.Cancelled)
                {
                    r.Cancelled = true;
                    if (r.LastPrediction != default)
                    {
                        // Its own predictions (tracked from stop events) go with it: an empty round retires them.
                        output.Publish(RoundMarker(r, r.Plan!, u.Time, 0));
                    }

                    output.Publish(new DerivedEvent
                    {
                        Type = DerivedEventType.Alert,
                        Kind = AlertKind.TripCancelled,
                        Time = u.Time,
                        TripId = u.TripId,
                        RouteId = r.RouteId,
                        DirectionId = r.Plan?.DirectionId ?? -1,
                        ServiceDate = r.ServiceDate,
                        VehicleId = r.VehicleId,
                    });
                }

                return null;
            }

            var update = u;
            PlannedStop? planned = null;
            if (r.Plan is { } plan)
            {
                var k = u.StopSequence >= 0 ? plan.IndexOfSequence(u.StopSequence) : -1;
                if (k < 0 && u.StopId is not null)
                {
                    // A loop trip visits its terminal twice: after stops observed, the next visit is the one meant.
                    var from = _stopEvents && r.StopEventArrival >= 0 ? Math.Max(0, plan.IndexOfSequence(r.StopEventArrival)) : 0;
                    k = plan.IndexOfStop(u.StopId, from);
                    if (k < 0 && from > 0)
                    {
                        k = plan.IndexOfStop(u.StopId);
                    }
                }

                if (k >= 0)
                {
                    StopsMatched++;
                    planned = plan.Stops[k];
                    update = u with { StopId = plan.Stops[k].StopId, StopSequence = plan.Stops[k].Sequence };
                }
                else
                {
                    StopsUnmatched++;
                }
            }
            else
            {
                StopsUnmatched++;
            }

            var key = update.StopSequence >= 0 ? update.StopSequence : r.Updates.Count;
            r.Updates[key] = update;
            if (u.Status == StopUpdateStatus.Skipped && update.StopId is not null)
            {
                if (r.Skipped.Add(update.StopId))
                {
                    output.Publish(new DerivedEvent
                    {
                        Type = DerivedEventType.Alert,
                        Kind = AlertKind.StopSkipped,
                        Time = u.Time,
                        TripId = u.TripId,
                        RouteId = r.RouteId,
                        DirectionId = r.Plan?.DirectionId ?? -1,
                        ServiceDate = r.ServiceDate,
                        VehicleId = r.VehicleId,
                        StopId = update.StopId,
                        StopSequence = update.StopSequence,
                    });
                }

                return null;
            }

            if (update.StopId is null || u.Status != StopUpdateStatus.Scheduled)
            {
                return null;
            }

            List<DerivedEvent>? derived = null;
            if (_stopEvents && !r.VehicleTracked && planned is { } stop && r.Plan is { } trip)
            {
                var happened = update.Arrival <= update.Time || update.Departure <= update.Time;
                if (happened)
                {
                    // It happened: derived once (a later poll repeats it), and never shown as upcoming.
                    derived = Observed(r, update, stop, trip);
                }

                if (_predictor is not null && r.StopEventArrival >= 0 && (derived is not null || update.Time > r.LastPrediction))
                {
                    // One round per trip and batch, once all its updates are in (EndOfStopUpdates).
                    r.LastPrediction = update.Time > r.LastPrediction ? update.Time : r.LastPrediction;
                    if (!r.RoundDue)
                    {
                        r.RoundDue = true;
                        _due.Add(r);
                    }
                }

                if (happened)
                {
                    return derived;
                }
            }

            var arrival = update.Arrival ?? update.Departure ??
                (planned is { } p && update.DelaySeconds is { } delay ? p.Arrival.AddSeconds(delay) : null);
            if (arrival is { } at)
            {
                stops.SetUpcoming(update.StopId, u.TripId, r.RouteId, r.VehicleId, at, planned?.Arrival, fromTripUpdate: true);
            }

            return derived;
        }
    }

    // One prediction round for a trip tracked from its stop events, at the poll's time: the downstream stops of the
    // last observed one, non-decreasing and never before now, then the round's marker (which retires what an earlier
    // round said and this one does not), as a vehicle's own round is.
    private void Predict(TripRecord r, TripPlan trip, DateTime time, ListOutput derived)
    {
        var vehicle = VehicleOf(r);
        _predictions.Clear();
        var next = r.StopEventArrival < 0 ? 0 : trip.IndexOfSequence(r.StopEventArrival) + 1;
        if (next > 0 && next < trip.Stops.Count)
        {
            var progress = new VehicleProgress(vehicle, trip, time, 0, next, r.StopEventDelay, 0)
            {
                Arrivals = r.Arrivals,
                Departures = r.Departures,
                HasPosition = false,
            };
            _predictor!.Predict(progress, _predictions);
            PredictionRound.Order(_predictions);
        }

        PredictionRound.Publish(_predictions, trip, time, vehicle, mode: null, ingestTimestamp: 0, derived);
        derived.Publish(RoundMarker(r, trip, time, _predictions.Count));
    }

    // The end of a prediction round: it retires whatever an earlier round of the vehicle said and this one does not.
    private static DerivedEvent RoundMarker(TripRecord r, TripPlan trip, DateTime time, int predictions) =>
        TripEvents.On(trip, DerivedEventType.PredictionRound, time, VehicleOf(r), trip.Mode) with { Value = predictions };

    // The vehicle a stop-event trip is shown as: the feed's vehicle id, or the trip's own when the feed names none.
    private static string VehicleOf(TripRecord r) => r.VehicleId ?? TripVehiclePrefix + r.TripId;

    // The arrival and departure an update reports as happened (a time at or before the update's own timestamp), each
    // once per stop and only forward along the trip; null when it reports neither (a prediction).
    private List<DerivedEvent>? Observed(TripRecord r, in StopUpdate u, PlannedStop stop, TripPlan trip)
    {
        List<DerivedEvent>? observed = null;
        var k = trip.IndexOfSequence(stop.Sequence);
        if (r.Arrivals.Length != trip.Stops.Count)
        {
            r.Arrivals = new long[trip.Stops.Count];
            r.Departures = new long[trip.Stops.Count];
        }

        if (u.Arrival is { } arrival && arrival <= u.Time && stop.Sequence > r.StopEventArrival)
        {
            r.StopEventArrival = stop.Sequence;
            r.StopEventDelay = (int)Math.Round((arrival - stop.Arrival).TotalSeconds);
            r.Arrivals[k] = arrival.Ticks;
            (observed ??= []).Add(StopEvent(DerivedEventType.Arrival, r, stop, trip, arrival, stop.Arrival));
        }

        if (u.Departure is { } departure && departure <= u.Time && stop.Sequence > r.StopEventDeparture)
        {
            if (stop.Sequence > r.StopEventArrival)
            {
                // Departed from a stop whose arrival nobody reported: it arrived there no later than it left, and the
                // boards, histories and headways need the arrival (at the departure time: the latest it can have been).
                r.StopEventArrival = stop.Sequence;
                r.Arrivals[k] = departure.Ticks;
                (observed ??= []).Add(StopEvent(DerivedEventType.Arrival, r, stop, trip, departure, stop.Arrival));
            }

            r.StopEventDeparture = stop.Sequence;
            r.StopEventDelay = (int)Math.Round((departure - stop.Departure).TotalSeconds);
            r.Departures[k] = departure.Ticks;
            (observed ??= []).Add(StopEvent(DerivedEventType.Departure, r, stop, trip, departure, stop.Departure));
        }

        if (observed is not null && _predictor is IStopObserver learner)
        {
            foreach (var d in observed)
            {
                learner.Observe(d);
            }
        }

        StopEventsObserved += observed?.Count ?? 0;
        return observed;
    }

    // The record's trip ids and service date are its plan's (the record was made from it).
    private static DerivedEvent StopEvent(DerivedEventType type, TripRecord r, PlannedStop stop, TripPlan trip, DateTime at, DateTime scheduled) =>
        TripEvents.AtStop(trip, stop, type, at, scheduled, VehicleOf(r), trip.Mode, DetectionSource.StopEvent);

    private TripRecord Get(string tripId, DateOnly? date, string? routeId, DateTime near, out bool created)
    {
        if (_trips.TryGetValue(tripId, out var r))
        {
            created = false;
            return r;
        }

        created = true;
        _catalog.TryGet(tripId, date, near, out var plan);
        r = new TripRecord(tripId) { Plan = plan, ServiceDate = plan?.ServiceDate ?? date, RouteId = plan?.RouteId ?? routeId };
        r.VehicleTracked = _positionsFirst.Remove(tripId);
        _trips.Add(tripId, r);
        return r;
    }

    private sealed class TripRecord(string tripId)
    {
        public string TripId { get; } = tripId;

        public TripPlan? Plan { get; init; }

        public DateOnly? ServiceDate { get; init; }

        public string? RouteId { get; init; }

        public string? VehicleId { get; set; }

        public bool Cancelled { get; set; }

        // A vehicle's own tracking runs this trip (positions): stop events from the updates are not derived.
        public bool VehicleTracked { get; set; }

        // stop_sequence of the last arrival and departure derived from the updates; -1 before.
        public int StopEventArrival { get; set; } = -1;

        public int StopEventDeparture { get; set; } = -1;

        // The delay at the last of them, and every stop's observed times (UTC ticks, 0: not yet) for the predictor.
        public int StopEventDelay { get; set; }

        public long[] Arrivals { get; set; } = [];

        public long[] Departures { get; set; } = [];

        // The newest poll time a prediction round was due at, and whether one is due at the end of this batch.
        public DateTime LastPrediction { get; set; }

        public bool RoundDue { get; set; }

        public int? ObservedDelay { get; set; }

        public int LastObservedSequence { get; set; } = -1;

        public SortedDictionary<int, StopUpdate> Updates { get; } = [];

        public SortedSet<string> Skipped { get; } = new(StringComparer.Ordinal);

        public TripView ToView() => new(TripId, ServiceDate, RouteId, Plan is not null, VehicleId, Cancelled, ObservedDelay,
            LastObservedSequence, [.. Updates.Values], [.. Skipped]);
    }
}
