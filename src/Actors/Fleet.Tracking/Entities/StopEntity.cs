using System.Text.Json.Serialization;
using Fleet.Actors;
using Fleet.Actors.Persistence;
using Fleet.Tracking.Network;
using Fleet.Tracking.Output;

namespace Fleet.Tracking.Entities;

/// <summary>Messages of the stop region (keyed by GTFS stop_id).</summary>
public abstract record StopMessage
{
    /// <summary>Command: an expected arrival of a trip at the stop (from a TripUpdate or from our predictor).</summary>
    /// <param name="Arrival">The expected arrival.</param>
    public sealed record Upcoming(UpcomingArrival Arrival) : StopMessage;

    /// <summary>Command: a vehicle arrived at the stop.</summary>
    /// <param name="Event">The arrival a vehicle derived; its <see cref="DerivedEvent.StopId"/> is the stop.</param>
    public sealed record Arrived(DerivedEvent Event) : StopMessage;

    /// <summary>Query: the stop's view (null when the stop has no history).</summary>
    /// <param name="Reply">Completed with the view.</param>
    public sealed record Query(TaskCompletionSource<StopView?> Reply) : StopMessage;
}

/// <summary>What a stop knows: upcoming arrivals across trips, soonest first, and observed arrivals, oldest first.</summary>
/// <param name="StopId">stop_id.</param>
/// <param name="Upcoming">Expected arrivals of trips that have not arrived yet.</param>
/// <param name="History">The last <see cref="StopState.HistoryLength"/> observed arrivals.</param>
public sealed record StopView(string StopId, IReadOnlyList<UpcomingArrival> Upcoming, IReadOnlyList<ObservedArrival> History);

/// <summary>What the stop entity journals.</summary>
[JsonDerivedType(typeof(UpcomingSet), "u")]
[JsonDerivedType(typeof(ArrivalObserved), "a")]
public abstract record StopJournalEvent
{
    /// <summary>An expected arrival was set (replacing the trip's previous one).</summary>
    /// <param name="Arrival">The expected arrival.</param>
    public sealed record UpcomingSet(UpcomingArrival Arrival) : StopJournalEvent;

    /// <summary>A trip arrived.</summary>
    /// <param name="Arrival">The observed arrival (headway included).</param>
    /// <param name="DirectionId">The trip's direction, for the next headway.</param>
    public sealed record ArrivalObserved(ObservedArrival Arrival, sbyte DirectionId) : StopJournalEvent;
}

/// <summary>The persisted state of one stop.</summary>
/// <remarks>Mutable; owned by its entity (snapshotted as JSON). Bounded: the history keeps the last
/// <see cref="HistoryLength"/> arrivals, the set of arrived trips the last <see cref="ArrivedLength"/>.</remarks>
public sealed class StopState
{
    /// <summary>Observed arrivals kept.</summary>
    public const int HistoryLength = StopBoard.HistoryLength;

    /// <summary>Arrived trips remembered (late predictions for them are ignored).</summary>
    public const int ArrivedLength = 4 * HistoryLength;

    /// <summary>stop_id.</summary>
    public string StopId { get; set; } = "";

    /// <summary>Expected arrivals, one per trip, in the order they were first set.</summary>
    public List<UpcomingArrival> Upcoming { get; set; } = [];

    /// <summary>Observed arrivals, oldest first.</summary>
    public List<ObservedArrival> History { get; set; } = [];

    /// <summary>Direction of each arrival in <see cref="History"/> (same index).</summary>
    public List<sbyte> HistoryDirections { get; set; } = [];

    /// <summary>trip_ids that arrived, oldest first.</summary>
    public List<string> Arrived { get; set; } = [];

    /// <summary>A copy for queries.</summary>
    public StopView ToView() => new(StopId,
        [.. Upcoming.OrderBy(u => u.Predicted).ThenBy(u => u.TripId, StringComparer.Ordinal)],
        [.. History]);

    internal int IndexOfUpcoming(string tripId) => Upcoming.FindIndex(u => string.Equals(u.TripId, tripId, StringComparison.Ordinal));
}

/// <summary>
/// A stop as a persistent sharded entity (keyed by GTFS stop_id): its upcoming arrivals across trips (from the trip
/// entities' TripUpdates and from vehicle predictions) and the observed arrival history with headways, the ground
/// truth the predictor learns from. A restart resumes from the journal.
/// </summary>
/// <remarks>
/// <para>An expected arrival equal to the stored one is not persisted again; one for a trip that already arrived is
/// ignored. The network stage (<see cref="NetworkTracker"/>) still raises the bunching alerts; the entity records.</para>
/// <para>One instance per stop, called by its shard only (not thread-safe, needs no locks).</para>
/// </remarks>
public sealed class StopEntity : PersistentEntity<StopMessage, StopState, StopJournalEvent>
{
    private static readonly JsonPersistenceSerializer<StopJournalEvent> s_events = new(VehicleEntity.JsonOptions);
    private static readonly JsonPersistenceSerializer<StopState> s_states = new(VehicleEntity.JsonOptions);

    /// <summary>Creates the entity for <paramref name="stopId"/>.</summary>
    public StopEntity(string stopId)
        : base(new StopState { StopId = stopId }, s_events, s_states)
    {
    }

    /// <inheritdoc />
    protected override void Receive(StopMessage message)
    {
        switch (message)
        {
            case StopMessage.Upcoming u:
                OnUpcoming(u.Arrival);
                break;
            case StopMessage.Arrived a:
                OnArrived(a.Event);
                break;
            case StopMessage.Query q:
                q.Reply.TrySetResult(SequenceNr == 0 ? null : State.ToView());
                if (SequenceNr == 0)
                {
                    Context.Passivate(); // a query for an unknown stop leaves nothing behind
                }

                break;
        }
    }

    private void OnUpcoming(in UpcomingArrival arrival)
    {
        if (State.Arrived.Contains(arrival.TripId, StringComparer.Ordinal))
        {
            return;
        }

        var i = State.IndexOfUpcoming(arrival.TripId);
        if (i >= 0 && State.Upcoming[i] == arrival)
        {
            return;
        }

        Persist(new StopJournalEvent.UpcomingSet(arrival));
    }

    private void OnArrived(DerivedEvent d)
    {
        if (d.TripId is null)
        {
            return;
        }

        // Headway to the latest earlier arrival of another trip on the same route and direction.
        int? headway = null;
        for (var i = State.History.Count - 1; i >= 0; i--)
        {
            var h = State.History[i];
            if (h.Time <= d.Time && string.Equals(h.RouteId, d.RouteId, StringComparison.Ordinal) &&
                State.HistoryDirections[i] == d.DirectionId && !string.Equals(h.TripId, d.TripId, StringComparison.Ordinal))
            {
                headway = (int)Math.Round((d.Time - h.Time).TotalSeconds);
                break;
            }
        }

        Persist(new StopJournalEvent.ArrivalObserved(
            new ObservedArrival(d.Time, d.TripId, d.RouteId, d.VehicleId, d.DelaySeconds, headway), d.DirectionId));
    }

    /// <inheritdoc />
    protected override StopState Apply(StopState state, StopJournalEvent @event)
    {
        switch (@event)
        {
            case StopJournalEvent.UpcomingSet u:
                var i = state.IndexOfUpcoming(u.Arrival.TripId);
                if (i >= 0)
                {
                    state.Upcoming[i] = u.Arrival;
                }
                else
                {
                    state.Upcoming.Add(u.Arrival);
                }

                break;
            case StopJournalEvent.ArrivalObserved a:
                var tripId = a.Arrival.TripId;
                var j = state.IndexOfUpcoming(tripId);
                if (j >= 0)
                {
                    state.Upcoming.RemoveAt(j);
                }

                state.Arrived.Add(tripId);
                if (state.Arrived.Count > StopState.ArrivedLength)
                {
                    state.Arrived.RemoveAt(0);
                }

                // Kept in time order (an out-of-order arrival is inserted where it belongs).
                var k = state.History.Count;
                while (k > 0 && state.History[k - 1].Time > a.Arrival.Time)
                {
                    k--;
                }

                state.History.Insert(k, a.Arrival);
                state.HistoryDirections.Insert(k, a.DirectionId);
                if (state.History.Count > StopState.HistoryLength)
                {
                    state.History.RemoveAt(0);
                    state.HistoryDirections.RemoveAt(0);
                }

                break;
        }

        return state;
    }
}
