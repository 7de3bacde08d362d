using System.Text.Json.Serialization;
using Fleet.Actors;
using Fleet.Actors.Persistence;
using Fleet.Tracking.Network;
using Fleet.Tracking.Output;
using Fleet.Tracking.Schedule;

namespace Fleet.Tracking.Entities;

/// <summary>Messages of the trip region (keyed by GTFS trip_id).</summary>
public abstract record TripMessage
{
    /// <summary>Command: one GTFS-RT stop time update (or trip cancellation) for the trip.</summary>
    /// <param name="Update">The update.</param>
    public sealed record StopTimeUpdate(StopUpdate Update) : TripMessage;

    /// <summary>Command: what a vehicle derived on the trip (trip start or end, arrival, departure).</summary>
    /// <param name="Event">The derived event; its <see cref="DerivedEvent.TripId"/> is the trip.</param>
    public sealed record Progress(DerivedEvent Event) : TripMessage;

    /// <summary>Query: the trip's view (null when the trip has no history).</summary>
    /// <param name="Reply">Completed with the view.</param>
    public sealed record Query(TaskCompletionSource<TripView?> Reply) : TripMessage;
}

/// <summary>What the trip entity journals: the facts that changed its state, already joined with the schedule.</summary>
[JsonDerivedType(typeof(UpdateStored), "u")]
[JsonDerivedType(typeof(CancelledByFeed), "c")]
[JsonDerivedType(typeof(VehicleChanged), "v")]
[JsonDerivedType(typeof(ProgressObserved), "p")]
public abstract record TripJournalEvent
{
    /// <summary>A stop time update was stored (stop_id and stop_sequence resolved against the schedule when it joined).</summary>
    /// <param name="Update">The update.</param>
    /// <param name="InSchedule">True when the trip joined the static schedule.</param>
    /// <param name="RouteId">The trip's route.</param>
    /// <param name="ServiceDate">The trip's service date.</param>
    public sealed record UpdateStored(StopUpdate Update, bool InSchedule, string? RouteId, DateOnly? ServiceDate) : TripJournalEvent;

    /// <summary>A TripUpdate cancelled the trip.</summary>
    /// <param name="Time">Feed time.</param>
    public sealed record CancelledByFeed(DateTime Time) : TripJournalEvent;

    /// <summary>The vehicle on the trip changed (a vehicle started it, or left it before completing).</summary>
    /// <param name="VehicleId">The vehicle, null when it left.</param>
    /// <param name="RouteId">The trip's route.</param>
    /// <param name="ServiceDate">The trip's service date.</param>
    public sealed record VehicleChanged(string? VehicleId, string? RouteId, DateOnly? ServiceDate) : TripJournalEvent;

    /// <summary>A vehicle arrived at or departed from a stop of the trip (HFP-derived progress).</summary>
    /// <param name="Time">Event time.</param>
    /// <param name="VehicleId">The vehicle.</param>
    /// <param name="StopId">stop_id.</param>
    /// <param name="StopSequence">stop_sequence.</param>
    /// <param name="DelaySeconds">Delay there.</param>
    /// <param name="Arrival">True for an arrival, false for a departure.</param>
    public sealed record ProgressObserved(DateTime Time, string? VehicleId, string? StopId, int StopSequence, int? DelaySeconds, bool Arrival) : TripJournalEvent;
}

/// <summary>The persisted state of one trip: its GTFS-RT updates joined with the HFP-derived progress.</summary>
/// <remarks>Mutable; owned by its entity (snapshotted as JSON).</remarks>
public sealed class TripState
{
    /// <summary>trip_id.</summary>
    public string TripId { get; set; } = "";

    /// <summary>Service date, when known.</summary>
    public DateOnly? ServiceDate { get; set; }

    /// <summary>route_id, when known.</summary>
    public string? RouteId { get; set; }

    /// <summary>True when the trip joined the static schedule.</summary>
    public bool InSchedule { get; set; }

    /// <summary>The vehicle on the trip.</summary>
    public string? VehicleId { get; set; }

    /// <summary>True when a TripUpdate cancelled it.</summary>
    public bool Cancelled { get; set; }

    /// <summary>Delay at the last observed arrival or departure.</summary>
    public int? ObservedDelaySeconds { get; set; }

    /// <summary>stop_sequence of the last observation; -1 when none.</summary>
    public int LastObservedStopSequence { get; set; } = -1;

    /// <summary>When the last observation happened.</summary>
    public DateTime? LastObservedTime { get; set; }

    /// <summary>Observed arrivals and departures so far.</summary>
    public int Observations { get; set; }

    /// <summary>Latest stop time update per stop_sequence (or per order when the feed gives none), by key ascending.</summary>
    public List<StopUpdate> Updates { get; set; } = [];

    /// <summary>stop_ids the updates skip, sorted.</summary>
    public List<string> SkippedStops { get; set; } = [];

    /// <summary>A copy for queries.</summary>
    public TripView ToView() => new(TripId, ServiceDate, RouteId, InSchedule, VehicleId, Cancelled, ObservedDelaySeconds,
        LastObservedStopSequence, [.. Updates], [.. SkippedStops]);

    /// <summary>Index of the update stored under <paramref name="key"/>, or the complement of where it would go.</summary>
    internal int Find(int key)
    {
        int lo = 0, hi = Updates.Count - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            var k = Updates[mid].StopSequence;
            if (k == key)
            {
                return mid;
            }

            if (k < key)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return ~lo;
    }
}

/// <summary>
/// A trip as a persistent sharded entity (keyed by GTFS trip_id): holds the GTFS-RT TripUpdates for the trip joined
/// with the schedule and with the progress vehicles derive from HFP, and tells the stops of the trip their upcoming
/// arrival from each update. A restart resumes from the journal.
/// </summary>
/// <remarks>
/// <para>Command handlers resolve the update against the schedule and persist it only when it says something new
/// (a feed repeats every update in every snapshot); <see cref="Apply"/> only records. Upcoming arrivals are sent to
/// the stop region after the update is stored, never during recovery.</para>
/// <para>One instance per trip, called by its shard only (not thread-safe, needs no locks).</para>
/// </remarks>
public sealed class TripEntity : PersistentEntity<TripMessage, TripState, TripJournalEvent>
{
    private static readonly JsonPersistenceSerializer<TripJournalEvent> s_events = new(VehicleEntity.JsonOptions);
    private static readonly JsonPersistenceSerializer<TripState> s_states = new(VehicleEntity.JsonOptions);
    private readonly ITripCatalog _catalog;
    private readonly ShardRegion<StopMessage>? _stops;
    private TripPlan? _plan;
    private bool _planLooked;

    /// <summary>Creates the entity for <paramref name="tripId"/>.</summary>
    /// <param name="tripId">GTFS trip_id.</param>
    /// <param name="catalog">The schedule.</param>
    /// <param name="stops">Where upcoming arrivals go (none when null).</param>
    public TripEntity(string tripId, ITripCatalog catalog, ShardRegion<StopMessage>? stops)
        : base(new TripState { TripId = tripId }, s_events, s_states)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        _catalog = catalog;
        _stops = stops;
    }

    /// <inheritdoc />
    protected override void Receive(TripMessage message)
    {
        switch (message)
        {
            case TripMessage.StopTimeUpdate u:
                OnUpdate(u.Update);
                break;
            case TripMessage.Progress p:
                OnProgress(p.Event);
                break;
            case TripMessage.Query q:
                q.Reply.TrySetResult(SequenceNr == 0 ? null : State.ToView());
                if (SequenceNr == 0)
                {
                    Context.Passivate(); // a query for an unknown trip leaves nothing behind
                }

                break;
        }
    }

    private TripPlan? Plan(DateOnly? serviceDate, DateTime near)
    {
        if (!_planLooked)
        {
            _planLooked = true;
            _plan = _catalog.TryGet(State.TripId, serviceDate ?? State.ServiceDate, near, out var plan) ? plan : null;
        }

        return _plan;
    }

    private void OnUpdate(in StopUpdate u)
    {
        var plan = Plan(u.ServiceDate, u.Time);
        var routeId = plan?.RouteId ?? u.RouteId ?? State.RouteId;
        var serviceDate = plan?.ServiceDate ?? u.ServiceDate ?? State.ServiceDate;
        if (u.Status == StopUpdateStatus.TripCancelled)
        {
            if (!State.Cancelled)
            {
                Persist(new TripJournalEvent.CancelledByFeed(u.Time));
            }

            return;
        }

        var update = u;
        PlannedStop? planned = null;
        if (plan is not null)
        {
            var k = u.StopSequence >= 0 ? plan.IndexOfSequence(u.StopSequence) : -1;
            if (k < 0 && u.StopId is not null)
            {
                k = plan.IndexOfStop(u.StopId);
            }

            if (k >= 0)
            {
                planned = plan.Stops[k];
                update = u with { StopId = planned.Value.StopId, StopSequence = planned.Value.Sequence };
            }
        }

        if (update.StopSequence < 0)
        {
            // No sequence from the feed or the schedule: keep the updates in the order they came.
            update = update with { StopSequence = State.Updates.Count == 0 ? 0 : State.Updates[^1].StopSequence + 1 };
        }

        var i = State.Find(update.StopSequence);
        if (i >= 0 && State.Updates[i] with { Time = update.Time } == update)
        {
            return; // the feed repeated what is stored
        }

        var stored = new TripJournalEvent.UpdateStored(update, plan is not null, routeId, serviceDate);
        if (update.StopId is null || update.Status != StopUpdateStatus.Scheduled || _stops is null)
        {
            Persist(stored);
            return;
        }

        var arrival = update.Arrival ?? update.Departure ??
            (planned is { } p && update.DelaySeconds is { } delay ? p.Arrival.AddSeconds(delay) : null);
        Persist(stored, arrival is { } at
            ? () => Context.Send(_stops, update.StopId, new StopMessage.Upcoming(
                new UpcomingArrival(update.TripId, routeId, State.VehicleId, at, planned?.Arrival, FromTripUpdate: true)))
            : null);
    }

    private void OnProgress(DerivedEvent d)
    {
        switch (d.Type)
        {
            case DerivedEventType.TripStarted when d.VehicleId != State.VehicleId:
                Persist(new TripJournalEvent.VehicleChanged(d.VehicleId, d.RouteId ?? State.RouteId, d.ServiceDate ?? State.ServiceDate));
                break;
            case DerivedEventType.TripEnded when d.VehicleId == State.VehicleId && d.Other != "completed" && State.VehicleId is not null:
                Persist(new TripJournalEvent.VehicleChanged(null, State.RouteId, State.ServiceDate));
                break;
            case DerivedEventType.Arrival or DerivedEventType.Departure:
                Persist(new TripJournalEvent.ProgressObserved(d.Time, d.VehicleId, d.StopId, d.StopSequence, d.DelaySeconds, d.Type == DerivedEventType.Arrival));
                break;
        }
    }

    /// <inheritdoc />
    protected override TripState Apply(TripState state, TripJournalEvent @event)
    {
        switch (@event)
        {
            case TripJournalEvent.UpdateStored s:
                state.InSchedule |= s.InSchedule;
                state.RouteId = s.RouteId ?? state.RouteId;
                state.ServiceDate = s.ServiceDate ?? state.ServiceDate;
                if (s.Update.VehicleId is not null)
                {
                    state.VehicleId ??= s.Update.VehicleId;
                }

                var i = state.Find(s.Update.StopSequence);
                if (i >= 0)
                {
                    state.Updates[i] = s.Update;
                }
                else
                {
                    state.Updates.Insert(~i, s.Update);
                }

                if (s.Update.Status == StopUpdateStatus.Skipped && s.Update.StopId is { } skipped)
                {
                    var j = state.SkippedStops.BinarySearch(skipped, StringComparer.Ordinal);
                    if (j < 0)
                    {
                        state.SkippedStops.Insert(~j, skipped);
                    }
                }

                break;
            case TripJournalEvent.CancelledByFeed:
                state.Cancelled = true;
                break;
            case TripJournalEvent.VehicleChanged v:
                state.VehicleId = v.VehicleId;
                state.RouteId = v.RouteId ?? state.RouteId;
                state.ServiceDate = v.ServiceDate ?? state.ServiceDate;
                break;
            case TripJournalEvent.ProgressObserved p:
                state.ObservedDelaySeconds = p.DelaySeconds;
                state.LastObservedStopSequence = p.StopSequence;
                state.LastObservedTime = p.Time;
                state.VehicleId ??= p.VehicleId;
                state.Observations++;
                break;
        }

        return state;
    }
}
