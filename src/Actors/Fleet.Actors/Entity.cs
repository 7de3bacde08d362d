using System.Threading.Channels;

namespace Fleet.Actors;

/// <summary>
/// A sharded entity: a plain object with state, created on its first message and fed one message at a time
/// by its shard.
/// </summary>
/// <typeparam name="TMessage">The message type of the region the entity lives in.</typeparam>
/// <remarks>
/// An entity is never called concurrently, so it needs no locks; it must not block (no waiting on I/O) because
/// it shares its shard's worker with thousands of other entities. It may be removed from memory at any time
/// it is idle (passivation) and re-created later, so anything that must survive lives in a
/// <see cref="PersistentEntity{TMessage,TState,TEvent}"/>'s events.
/// </remarks>
public abstract class Entity<TMessage>
{
    private EntityContext? _context;

    /// <summary>The entity's id, clock and ways to talk to the outside; set before the first call.</summary>
    protected EntityContext Context => _context ?? throw new InvalidOperationException("the entity is not attached to a shard yet");

    internal void Attach(EntityContext context) => _context = context;

    /// <summary>Handles one message. An exception restarts the entity from its persisted state.</summary>
    protected internal abstract void Receive(TMessage message);

    /// <summary>Called once the entity is created (and, if persistent, recovered), before its first message.</summary>
    /// <remarks>Side effects are allowed here, unlike in recovery.</remarks>
    protected internal virtual void OnStarted()
    {
    }
}

/// <summary>What an entity can see of its surroundings.</summary>
/// <remarks>Only valid on the entity's own shard, during a call into the entity.</remarks>
public abstract class EntityContext
{
    /// <summary>The entity's id.</summary>
    public abstract string EntityId { get; }

    /// <summary>The name of the region the entity lives in.</summary>
    public abstract string RegionName { get; }

    /// <summary>The clock. Command handlers read it and put the time into events; recovery never does.</summary>
    public abstract TimeProvider Time { get; }

    /// <summary>True while the entity replays its history; sending or emitting then throws.</summary>
    public abstract bool IsRecovering { get; }

    /// <summary>
    /// Sends a message to an entity of another (or the same) region, preserving order with the entity's
    /// other sends. When the target mailbox is full, the send completes after the handler returns and the
    /// shard waits for it before its next message: backpressure, not an unbounded queue.
    /// </summary>
    /// <remarks>Regions that send to each other in a cycle can deadlock under full load; keep sends a DAG.</remarks>
    public abstract void Send<T>(ShardRegion<T> region, string entityId, T message);

    /// <summary>Writes an output (for example a live-event channel), with the same ordering and backpressure as <see cref="Send{T}"/>.</summary>
    public abstract void Emit<T>(ChannelWriter<T> output, T item);

    /// <summary>Asks the shard to passivate this entity after the current message (ignored while messages for it are buffered).</summary>
    public abstract void Passivate();
}
