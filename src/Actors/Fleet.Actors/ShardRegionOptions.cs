namespace Fleet.Actors;

/// <summary>Settings of one <see cref="ShardRegion{TMessage}"/>.</summary>
/// <remarks>Read once when the region starts; later changes have no effect.</remarks>
public sealed class ShardRegionOptions
{
    /// <summary>Number of shards. Fixed for the life of the data: changing it moves entities between shards.</summary>
    public int ShardCount { get; set; } = 64;

    /// <summary>Workers the shards run on: at most this many shards process messages at the same time.</summary>
    public int Workers { get; set; } = Environment.ProcessorCount;

    /// <summary>Capacity of each shard's mailbox; senders wait when it is full.</summary>
    public int MailboxCapacity { get; set; } = 4096;

    /// <summary>Messages a shard reads from its mailbox before it looks at its system queue again.</summary>
    public int MailboxBatchSize { get; set; } = 256;

    /// <summary>
    /// Messages buffered for one entity while it recovers, persists, passivates or waits for a restart.
    /// When the buffer is full the shard stops reading its mailbox until the entity catches up, so
    /// backpressure reaches the senders and nothing is dropped.
    /// </summary>
    public int EntityBufferCapacity { get; set; } = 1024;

    /// <summary>An entity that received no message for this long is snapshotted and removed from memory.</summary>
    /// <remarks><see cref="TimeSpan.Zero"/> or <see cref="Timeout.InfiniteTimeSpan"/> turns passivation off.</remarks>
    public TimeSpan PassivationIdleTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>A persistent entity saves a snapshot after this many events (0 = never, except at passivation).</summary>
    public int SnapshotEvery { get; set; } = 100;

    /// <summary>Entities that were active when the process stopped are started again by <see cref="ShardRegion{TMessage}.StartAsync"/>.</summary>
    public bool RememberEntities { get; set; }

    /// <summary>Attempts a message gets before it is dropped to the dead letters.</summary>
    public int MaxDeliveryAttempts { get; set; } = 3;

    /// <summary>First restart delay after a handler failure; doubles with each failure in a row.</summary>
    public TimeSpan MinRestartBackoff { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Upper bound of the restart delay.</summary>
    public TimeSpan MaxRestartBackoff { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How many recent dead letters <see cref="DeadLetterOffice.Recent"/> keeps.</summary>
    public int DeadLetterHistory { get; set; } = 1000;

    /// <summary>Called on the shard's worker for every lifecycle change; must be quick and must not throw.</summary>
    /// <remarks>Not bindable from configuration; meant for metrics, tracing and tests.</remarks>
    public Action<EntityLifecycleEvent>? LifecycleObserver { get; set; }

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ShardCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(Workers);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MailboxCapacity);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MailboxBatchSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(EntityBufferCapacity);
        ArgumentOutOfRangeException.ThrowIfNegative(SnapshotEvery);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxDeliveryAttempts);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(DeadLetterHistory);
        ArgumentOutOfRangeException.ThrowIfLessThan(MinRestartBackoff, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxRestartBackoff, MinRestartBackoff);
    }
}

/// <summary>What happened to an entity.</summary>
public enum EntityLifecycle
{
    /// <summary>Created in memory (first message, remembered start, or restart).</summary>
    Started,
    /// <summary>Recovered from its snapshot and events; it now handles messages.</summary>
    Recovered,
    /// <summary>Snapshotted and removed from memory after being idle.</summary>
    Passivated,
    /// <summary>A handler threw; the entity waits for its restart.</summary>
    Failed,
    /// <summary>Re-created after a failure, from persisted state.</summary>
    Restarted,
    /// <summary>Stopped because its state is unknown (journal write or recovery failure).</summary>
    Stopped,
}

/// <summary>A lifecycle change of one entity, reported to <see cref="ShardRegionOptions.LifecycleObserver"/>.</summary>
/// <param name="Region">The region's name.</param>
/// <param name="EntityId">The entity.</param>
/// <param name="Lifecycle">What happened.</param>
/// <param name="Error">The failure, for <see cref="EntityLifecycle.Failed"/> and <see cref="EntityLifecycle.Stopped"/>.</param>
public sealed record EntityLifecycleEvent(string Region, string EntityId, EntityLifecycle Lifecycle, Exception? Error = null);
