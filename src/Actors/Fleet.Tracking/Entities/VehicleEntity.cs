using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using Fleet.Actors;
using Fleet.Actors.Persistence;
using Fleet.Ingest.Events;
using Fleet.Tracking.Output;
using Fleet.Tracking.Schedule;
using Fleet.Tracking.Vehicles;

namespace Fleet.Tracking.Entities;

/// <summary>Messages of the vehicle region.</summary>
public abstract record VehicleMessage
{
    /// <summary>Command: take one event of the vehicle.</summary>
    /// <param name="Event">The event.</param>
    /// <param name="Sequence">
    /// The source's ingest sequence number (a recording's line number), increasing per vehicle; 0 when the source
    /// has none. An event whose sequence is at or below the last one applied was applied before a restart and is
    /// skipped, so a source that starts again from an earlier point never applies an event twice.
    /// </param>
    public sealed record ReportEvent(VehicleEvent Event, long Sequence = 0) : VehicleMessage;

    /// <summary>Command: the stream's event-time clock moved (releases held events, checks staleness).</summary>
    /// <param name="StreamTime">The stream clock, UTC.</param>
    public sealed record AdvanceClock(DateTime StreamTime) : VehicleMessage;
}

/// <summary>What the vehicle entity journals: its inputs, so replaying them through the tracker rebuilds the state.</summary>
[JsonDerivedType(typeof(EventAccepted), "e")]
[JsonDerivedType(typeof(ClockAdvanced), "c")]
public abstract record VehicleJournalEvent
{
    /// <summary>An event was accepted.</summary>
    /// <param name="Event">The event.</param>
    /// <param name="Sequence">The source's ingest sequence number (0 when none); see <see cref="VehicleMessage.ReportEvent"/>.</param>
    public sealed record EventAccepted(VehicleEvent Event, long Sequence = 0) : VehicleJournalEvent;

    /// <summary>The clock advanced.</summary>
    /// <param name="StreamTime">The stream clock.</param>
    public sealed record ClockAdvanced(DateTime StreamTime) : VehicleJournalEvent;
}

/// <summary>
/// The vehicle as a persistent sharded entity: a <see cref="VehicleTracker"/> whose inputs are journaled
/// (persist, then apply) and whose state is snapshotted, so a restart resumes where it stopped. Derived events go to
/// an output channel once the input that caused them is stored; recovery re-derives nothing.
/// </summary>
/// <remarks>One instance per vehicle id, called by its shard only (not thread-safe, needs no locks).</remarks>
public sealed class VehicleEntity : PersistentEntity<VehicleMessage, VehicleTrackerState, VehicleJournalEvent>
{
    /// <summary>JSON options for the journal and snapshots (VehicleEvent is a struct of fields; NaN is common).</summary>
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        IncludeFields = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private static readonly JsonPersistenceSerializer<VehicleJournalEvent> s_events = new(JsonOptions);
    private static readonly JsonPersistenceSerializer<VehicleTrackerState> s_states = new(JsonOptions);
    private readonly ITripCatalog _catalog;
    private readonly TrackingOptions _options;
    private readonly IArrivalPredictor? _predictor;
    private readonly ChannelWriter<DerivedEvent> _output;
    private readonly ListOutput _collected = new();
    private VehicleTracker? _tracker;
    private readonly Action? _onAlreadyApplied;
    private VehicleTrackerState? _trackerState;

    /// <summary>Creates the entity for <paramref name="vehicleId"/>.</summary>
    /// <param name="vehicleId">The vehicle id (the entity id).</param>
    /// <param name="catalog">The schedule.</param>
    /// <param name="options">Tracking thresholds.</param>
    /// <param name="output">Where derived events go once their input is stored.</param>
    /// <param name="predictor">Optional arrival predictor.</param>
    /// <param name="onAlreadyApplied">Called (on the shard's thread) for each event skipped because its sequence was applied before.</param>
    public VehicleEntity(string vehicleId, ITripCatalog catalog, TrackingOptions options, ChannelWriter<DerivedEvent> output, IArrivalPredictor? predictor = null,
        Action? onAlreadyApplied = null)
        : base(new VehicleTrackerState { VehicleId = vehicleId }, s_events, s_states)
    {
        _catalog = catalog;
        _options = options;
        _output = output;
        _predictor = predictor;
        _onAlreadyApplied = onAlreadyApplied;
    }

    /// <inheritdoc />
    protected override void Receive(VehicleMessage message)
    {
        switch (message)
        {
            case VehicleMessage.ReportEvent r when r.Sequence > 0 && r.Sequence <= State.LastSequence:
                // Applied before a restart (the source started again from an earlier point): not again.
                _onAlreadyApplied?.Invoke();
                break;
            case VehicleMessage.ReportEvent r:
                Persist(new VehicleJournalEvent.EventAccepted(r.Event, r.Sequence), EmitCollected);
                break;
            case VehicleMessage.AdvanceClock c:
                Persist(new VehicleJournalEvent.ClockAdvanced(c.StreamTime), EmitCollected);
                break;
        }
    }

    /// <inheritdoc />
    protected override VehicleTrackerState Apply(VehicleTrackerState state, VehicleJournalEvent @event)
    {
        // The tracker wraps the state object; a snapshot restore swaps the object, so re-wrap then.
        if (_tracker is null || !ReferenceEquals(_trackerState, state))
        {
            _tracker = new VehicleTracker(state, _catalog, _options, _predictor);
            _trackerState = state;
        }

        switch (@event)
        {
            case VehicleJournalEvent.EventAccepted a:
                _tracker.Accept(a.Event, _collected);
                if (a.Sequence > state.LastSequence)
                {
                    state.LastSequence = a.Sequence;
                }

                break;
            case VehicleJournalEvent.ClockAdvanced c:
                _tracker.AdvanceClock(c.StreamTime, _collected);
                break;
        }

        // Keep the state object complete (reorder buffer included) for the next snapshot.
        _tracker.CaptureState();
        if (Context.IsRecovering)
        {
            _collected.Events.Clear(); // recovery re-derives nothing
        }

        return state;
    }

    private void EmitCollected()
    {
        foreach (var d in _collected.Events)
        {
            Context.Emit(_output, d);
        }

        _collected.Events.Clear();
    }
}
