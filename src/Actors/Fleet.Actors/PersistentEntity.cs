using Fleet.Actors.Persistence;

namespace Fleet.Actors;

/// <summary>
/// An event-sourced entity: command handlers validate against <see cref="State"/> and <see cref="Persist"/>
/// events; once the journal has stored them the runtime applies them with <see cref="Apply"/> and runs the
/// continuation. Recovery replays the latest snapshot and the events after it through <see cref="Apply"/>.
/// </summary>
/// <typeparam name="TMessage">The region's message type.</typeparam>
/// <typeparam name="TState">The state; a mutable class or an immutable record, as long as <see cref="Apply"/> returns the new state.</typeparam>
/// <typeparam name="TEvent">The event type (a base record with <c>[JsonDerivedType]</c> works with the default serializer).</typeparam>
/// <remarks>
/// <para>Persist, then apply: while a write is outstanding the entity gets no further messages (they are
/// buffered), so the state a handler sees always includes every event it persisted before.</para>
/// <para><see cref="Apply"/> must be free of side effects: it runs during recovery, where reading the clock or
/// sending anything would repeat history. Timestamps belong in the events.</para>
/// <para>If the journal fails a write, the entity is stopped: its state is no longer known.</para>
/// </remarks>
public abstract class PersistentEntity<TMessage, TState, TEvent> : Entity<TMessage>, IPersistentEntity
{
    private readonly IPersistenceSerializer<TEvent> _eventSerializer;
    private readonly IPersistenceSerializer<TState> _stateSerializer;
    private TState _state;
    private long _sequenceNr;
    private long _snapshotSequenceNr;
    private TEvent[]? _pending;
    private Action? _then;

    /// <summary>Creates the entity with its empty state.</summary>
    /// <param name="initialState">The state before the first event.</param>
    /// <param name="eventSerializer">Event format; System.Text.Json when null.</param>
    /// <param name="stateSerializer">Snapshot format; System.Text.Json when null.</param>
    protected PersistentEntity(
        TState initialState,
        IPersistenceSerializer<TEvent>? eventSerializer = null,
        IPersistenceSerializer<TState>? stateSerializer = null)
    {
        _state = initialState;
        _eventSerializer = eventSerializer ?? JsonPersistenceSerializer<TEvent>.Default;
        _stateSerializer = stateSerializer ?? JsonPersistenceSerializer<TState>.Default;
    }

    /// <summary>The state, including every persisted event.</summary>
    public TState State => _state;

    /// <summary>The sequence number of the last applied event (0 before the first).</summary>
    public long SequenceNr => _sequenceNr;

    /// <summary>Applies one event to the state and returns the new state; no side effects.</summary>
    protected abstract TState Apply(TState state, TEvent @event);

    /// <summary>Persists one event; once stored it is applied and <paramref name="then"/> runs.</summary>
    protected void Persist(TEvent @event, Action? then = null) => PersistAll([@event], then);

    /// <summary>Persists events atomically; once stored they are applied in order and <paramref name="then"/> runs.</summary>
    /// <remarks>One call per handler invocation (or per continuation).</remarks>
    protected void PersistAll(TEvent[] events, Action? then = null)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (_pending is not null)
        {
            throw new InvalidOperationException("Persist was already called in this handler; pass all events to one PersistAll");
        }

        if (Context.IsRecovering)
        {
            throw new InvalidOperationException("Persist is not allowed during recovery");
        }

        if (events.Length == 0)
        {
            then?.Invoke();
            return;
        }

        _pending = events;
        _then = then;
    }

    bool IPersistentEntity.HasPendingEvents => _pending is not null;

    long IPersistentEntity.SequenceNr => _sequenceNr;

    long IPersistentEntity.SnapshotSequenceNr
    {
        get => _snapshotSequenceNr;
        set => _snapshotSequenceNr = value;
    }

    AppendEvents IPersistentEntity.CreateWrite(string persistenceId)
    {
        var events = _pending!;
        var payloads = new byte[events.Length][];
        for (var i = 0; i < events.Length; i++)
        {
            payloads[i] = _eventSerializer.Serialize(events[i]);
        }

        return new AppendEvents(persistenceId, _sequenceNr + 1, payloads);
    }

    void IPersistentEntity.ConfirmPersisted()
    {
        var events = _pending!;
        var then = _then;
        _pending = null;
        _then = null;
        foreach (var e in events)
        {
            _state = Apply(_state, e);
            _sequenceNr++;
        }

        then?.Invoke();
    }

    void IPersistentEntity.DiscardPending()
    {
        _pending = null;
        _then = null;
    }

    void IPersistentEntity.RecoverSnapshot(SnapshotRecord snapshot)
    {
        _state = _stateSerializer.Deserialize(snapshot.Payload);
        _sequenceNr = snapshot.SequenceNr;
        _snapshotSequenceNr = snapshot.SequenceNr;
    }

    void IReplayTarget.OnReplayed(long sequenceNr, ReadOnlySpan<byte> payload)
    {
        if (sequenceNr != _sequenceNr + 1)
        {
            throw new InvalidOperationException(
                $"'{Context.EntityId}': replayed event {sequenceNr} does not follow {_sequenceNr}");
        }

        _state = Apply(_state, _eventSerializer.Deserialize(payload));
        _sequenceNr = sequenceNr;
    }

    byte[] IPersistentEntity.SerializeSnapshot() => _stateSerializer.Serialize(_state);
}

/// <summary>What the shard needs from a persistent entity, independent of its generic types.</summary>
internal interface IPersistentEntity : IReplayTarget
{
    public bool HasPendingEvents { get; }

    public long SequenceNr { get; }

    public long SnapshotSequenceNr { get; set; }

    public AppendEvents CreateWrite(string persistenceId);

    public void ConfirmPersisted();

    public void DiscardPending();

    public void RecoverSnapshot(SnapshotRecord snapshot);

    public byte[] SerializeSnapshot();
}
