using System.Diagnostics;
using System.Threading.Channels;
using Fleet.Actors.Persistence;

namespace Fleet.Actors;

// Lifecycle of one entity inside its shard (after Akka's Shard.cs EntityState):
//
//            first message or remembered start
//   NoState ─────────────┬───────────────────────────────────────────┐
//      ▲                 │ persistent                                │ plain entity
//      │                 ▼                                           ▼
//      │◄─ failed ── Recovering ── snapshot + events replayed ──► Active ◄──────────────────────┐
//      │                 ▲                                        │  │  │                        │
//      │                 │ backoff elapsed               Persist()│  │  │ idle or Passivate()    │
//      │                 │ (plain: straight to Active)            ▼  │  ▼                        │
//      │◄─ write failed ─┼──────────────────────────────── Persisting │ Passivating ── buffer ──┤
//      │                 │                       stored, applied ─────┼──────────────── not empty┘
//      │          WaitingForRestart ◄── handler threw ────────────────┘       │
//      │                                                                     │ snapshot stored,
//      └─────────────────────────────────────────────────────────────────────┘ buffer empty
//
// Delivery switches on the state: Active entities get the message at once; every other state appends it to
// the entity's buffer, which is flushed on the transition to Active. A passivation request is ignored while
// the buffer is not empty. NoState means "not in the shard's map": a removed cell never comes back; a new
// message creates a new cell.

/// <summary>Where an entity is in its lifecycle; see the diagram above <see cref="EntityCell{TMessage}"/>.</summary>
internal enum EntityState : byte
{
    NoState,
    Recovering,
    Active,
    Persisting,
    Passivating,
    WaitingForRestart,
}

/// <summary>The shard's record of one entity: its state, buffer and bookkeeping, and its <see cref="EntityContext"/>.</summary>
/// <remarks>Touched only by its shard's loop (recovery replays into the entity on a pool thread while the cell is
/// <see cref="EntityState.Recovering"/>, when the shard does not touch the entity).</remarks>
[DebuggerDisplay("{Id} {State} buffered={BufferedCount}")]
internal sealed class EntityCell<TMessage> : EntityContext, IRecoveryTarget
{
    public readonly Shard<TMessage> Shard;
    public readonly string Id;
    public Entity<TMessage>? Entity;
    public IPersistentEntity? Persistent;
    public Queue<TMessage>? Buffer;
    public ITimer? RestartTimer;
    public long LastActive;
    public int Attempts;
    public int RestartsInRow;
    public int EventsSinceSnapshot;
    public EntityState State;
    public bool PassivateRequested;
    public bool Restarting;

    public EntityCell(Shard<TMessage> shard, string id)
    {
        Shard = shard;
        Id = id;
    }

    public int BufferedCount => Buffer?.Count ?? 0;

    public override string EntityId => Id;

    public override string RegionName => Shard.RegionName;

    public override TimeProvider Time => Shard.Time;

    public override bool IsRecovering => State == EntityState.Recovering;

    public override void Send<T>(ShardRegion<T> region, string entityId, T message) => Shard.Send(this, region, entityId, message);

    public override void Emit<T>(ChannelWriter<T> output, T item) => Shard.Emit(this, output, item);

    public override void Passivate() => PassivateRequested = true;

    // Recovery (on the journal's thread while the cell is Recovering; the shard does not touch the entity then).
    string IRecoveryTarget.PersistenceId => Shard.PersistenceIdOf(this);

    long IRecoveryTarget.RecoveredSequenceNr => Persistent!.SequenceNr;

    void IRecoveryTarget.OnSnapshot(SnapshotRecord snapshot) => Persistent!.RecoverSnapshot(snapshot);

    void IReplayTarget.OnReplayed(long sequenceNr, ReadOnlySpan<byte> payload) => Persistent!.OnReplayed(sequenceNr, payload);

    void IRecoveryTarget.OnRecoveryCompleted(Exception? error) => Shard.OnRecoveryCompleted(this, error);

    /// <summary>Moves to <paramref name="to"/>, rejecting moves the diagram does not have.</summary>
    public void Transition(EntityState to)
    {
        if (!IsLegal(State, to))
        {
            Shard.OnIllegalTransition(this, State, to);
            return;
        }

        Shard.OnTransition(State, to);
        State = to;
    }

    private static bool IsLegal(EntityState from, EntityState to) => (from, to) switch
    {
        (EntityState.NoState, EntityState.Recovering or EntityState.Active or EntityState.WaitingForRestart) => true,
        (EntityState.Recovering, EntityState.Active or EntityState.NoState) => true,
        (EntityState.Active, EntityState.Persisting or EntityState.Passivating or EntityState.WaitingForRestart or EntityState.NoState) => true,
        (EntityState.Persisting, EntityState.Persisting or EntityState.Active or EntityState.WaitingForRestart or EntityState.NoState) => true,
        (EntityState.Passivating, EntityState.Active or EntityState.NoState) => true,
        (EntityState.WaitingForRestart, EntityState.Recovering or EntityState.Active or EntityState.WaitingForRestart or EntityState.NoState) => true,
        _ => false,
    };
}
