namespace Fleet.Actors.Persistence;

/// <summary>
/// Durable store of entity events, snapshots and remembered entities (Akka.Persistence's journal and snapshot
/// store in one).
/// </summary>
/// <remarks>
/// <para>Writes are queued with <see cref="EnqueueAsync"/> and completed through
/// <see cref="JournalWrite.Observer"/> once durable (or failed). Writes complete in the order they were
/// queued; a journal may group writes of many entities into one transaction, but a failed write never fails
/// another entity's write. The queue is bounded: <see cref="EnqueueAsync"/> waits when it is full.</para>
/// <para>An event's key is (persistence id, sequence number); appending a sequence number that exists fails
/// the write, so two writers of one entity cannot interleave silently.</para>
/// <para>Implementations are thread-safe.</para>
/// </remarks>
public interface IJournal : IAsyncDisposable
{
    /// <summary>Queues a write; waits while the queue is full.</summary>
    public ValueTask EnqueueAsync(JournalWrite write, CancellationToken cancellationToken = default);

    /// <summary>The latest snapshot of an entity, or null.</summary>
    public ValueTask<SnapshotRecord?> LoadSnapshotAsync(string persistenceId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Calls <paramref name="target"/> for each event with a sequence number at or above
    /// <paramref name="fromSequenceNr"/>, in order, and returns the highest sequence number replayed (0 when none).
    /// </summary>
    public ValueTask<long> ReplayAsync(string persistenceId, long fromSequenceNr, IReplayTarget target, CancellationToken cancellationToken = default);

    /// <summary>The highest stored sequence number of an entity (0 when none).</summary>
    public ValueTask<long> ReadHighestSequenceNrAsync(string persistenceId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Recovers many entities at once: for each target, its latest snapshot (<see cref="IRecoveryTarget.OnSnapshot"/>),
    /// then its events after it, in order, then <see cref="IRecoveryTarget.OnRecoveryCompleted"/>.
    /// </summary>
    /// <remarks>
    /// <para>Calls <see cref="IRecoveryTarget.OnRecoveryCompleted"/> exactly once per target, with the error when
    /// that target could not be recovered (a failing target or a failing store); one target's failure does not
    /// fail the others. Targets complete in list order.</para>
    /// <para>The default runs <see cref="LoadSnapshotAsync"/> and <see cref="ReplayAsync"/> per target; a journal
    /// overrides it when it can read many entities more cheaply (one connection, one read transaction).</para>
    /// </remarks>
    public ValueTask RecoverAsync(IReadOnlyList<IRecoveryTarget> targets, CancellationToken cancellationToken = default) =>
        JournalRecovery.OneByOneAsync(this, targets, cancellationToken);

    /// <summary>Ids of the entities remembered as active in a region.</summary>
    public ValueTask<IReadOnlyList<string>> ReadRememberedAsync(string region, CancellationToken cancellationToken = default);

    /// <summary>Completes when every write queued before the call is durable (or failed).</summary>
    public Task FlushAsync(CancellationToken cancellationToken = default);

    /// <summary>Batch size, latency and failure counters.</summary>
    public JournalMetrics GetMetrics();
}

/// <summary>Receives replayed events; the payload span is only valid during the call.</summary>
public interface IReplayTarget
{
    /// <summary>One event, in sequence order.</summary>
    public void OnReplayed(long sequenceNr, ReadOnlySpan<byte> payload);
}

/// <summary>An entity being recovered by <see cref="IJournal.RecoverAsync"/>.</summary>
/// <remarks>The journal calls one target from one thread at a time: snapshot, events, completion.</remarks>
public interface IRecoveryTarget : IReplayTarget
{
    /// <summary>The entity's persistence id.</summary>
    public string PersistenceId { get; }

    /// <summary>The sequence number of the last event the target holds (the snapshot's once one was given; 0 before).</summary>
    public long RecoveredSequenceNr { get; }

    /// <summary>The latest snapshot; called at most once, before any event.</summary>
    public void OnSnapshot(SnapshotRecord snapshot);

    /// <summary>Called once, last: null when recovered, otherwise why not.</summary>
    public void OnRecoveryCompleted(Exception? error);
}

/// <summary>Told when a <see cref="JournalWrite"/> is durable or has failed.</summary>
public interface IJournalWriteObserver
{
    /// <summary>Called once per write, on a journal thread; must be quick and must not throw.</summary>
    public void OnWriteCompleted(JournalWrite write, Exception? error);
}

/// <summary>A stored snapshot.</summary>
/// <param name="SequenceNr">The sequence number of the last event the snapshot includes.</param>
/// <param name="Payload">The serialized state.</param>
public sealed record SnapshotRecord(long SequenceNr, byte[] Payload);

/// <summary>One unit of work for a journal: completed exactly once via <see cref="Observer"/>.</summary>
public abstract class JournalWrite
{
    private int _completed;

    /// <summary>Who is told when the write completes.</summary>
    public IJournalWriteObserver? Observer { get; set; }

    /// <summary>Caller's correlation object (the runtime puts the entity here).</summary>
    public object? State { get; set; }

    /// <summary>Number of events in this write (0 for non-event writes).</summary>
    public virtual int EventCount => 0;

    /// <summary>Timestamp (<see cref="System.Diagnostics.Stopwatch"/>) when the journal accepted the write.</summary>
    internal long EnqueuedAt { get; set; }

    /// <summary>Completes the write; later calls are ignored.</summary>
    public void Complete(Exception? error)
    {
        if (Interlocked.Exchange(ref _completed, 1) == 0)
        {
            Observer?.OnWriteCompleted(this, error);
        }
    }
}

/// <summary>Appends events of one entity, atomically.</summary>
/// <param name="persistenceId">The entity's persistence id.</param>
/// <param name="firstSequenceNr">The sequence number of the first event; the rest follow without gaps.</param>
/// <param name="payloads">Serialized events.</param>
public sealed class AppendEvents(string persistenceId, long firstSequenceNr, IReadOnlyList<byte[]> payloads) : JournalWrite
{
    /// <summary>The entity's persistence id.</summary>
    public string PersistenceId { get; } = persistenceId ?? throw new ArgumentNullException(nameof(persistenceId));

    /// <summary>The sequence number of the first event.</summary>
    public long FirstSequenceNr { get; } = firstSequenceNr >= 1 ? firstSequenceNr : throw new ArgumentOutOfRangeException(nameof(firstSequenceNr));

    /// <summary>Serialized events, in order.</summary>
    public IReadOnlyList<byte[]> Payloads { get; } = payloads ?? throw new ArgumentNullException(nameof(payloads));

    /// <inheritdoc />
    public override int EventCount => Payloads.Count;
}

/// <summary>Saves (replaces) the snapshot of one entity.</summary>
/// <param name="persistenceId">The entity's persistence id.</param>
/// <param name="sequenceNr">The last event included in the snapshot.</param>
/// <param name="payload">The serialized state.</param>
public sealed class SaveSnapshot(string persistenceId, long sequenceNr, byte[] payload) : JournalWrite
{
    /// <summary>The entity's persistence id.</summary>
    public string PersistenceId { get; } = persistenceId ?? throw new ArgumentNullException(nameof(persistenceId));

    /// <summary>The last event included in the snapshot.</summary>
    public long SequenceNr { get; } = sequenceNr;

    /// <summary>The serialized state.</summary>
    public byte[] Payload { get; } = payload ?? throw new ArgumentNullException(nameof(payload));
}

/// <summary>Adds an entity to (or removes it from) a region's remembered set.</summary>
/// <param name="region">The region's name.</param>
/// <param name="entityId">The entity.</param>
/// <param name="active">True to remember, false to forget.</param>
public sealed class RememberEntity(string region, string entityId, bool active) : JournalWrite
{
    /// <summary>The region's name.</summary>
    public string Region { get; } = region ?? throw new ArgumentNullException(nameof(region));

    /// <summary>The entity.</summary>
    public string EntityId { get; } = entityId ?? throw new ArgumentNullException(nameof(entityId));

    /// <summary>True to remember, false to forget.</summary>
    public bool Active { get; } = active;
}

/// <summary>A write that stores nothing; its completion means every earlier write completed.</summary>
internal sealed class FlushMarker : JournalWrite;

/// <summary>Recovery built from a journal's single-entity reads.</summary>
public static class JournalRecovery
{
    /// <summary><see cref="IJournal.RecoverAsync"/> with one <see cref="IJournal.LoadSnapshotAsync"/> and one <see cref="IJournal.ReplayAsync"/> per target.</summary>
    public static async ValueTask OneByOneAsync(IJournal journal, IReadOnlyList<IRecoveryTarget> targets, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(journal);
        ArgumentNullException.ThrowIfNull(targets);
        foreach (var target in targets)
        {
            Exception? error = null;
            try
            {
                var persistenceId = target.PersistenceId;
                var snapshot = await journal.LoadSnapshotAsync(persistenceId, cancellationToken).ConfigureAwait(false);
                if (snapshot is not null)
                {
                    target.OnSnapshot(snapshot);
                }

                await journal.ReplayAsync(persistenceId, target.RecoveredSequenceNr + 1, target, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                error = ex;
            }

            target.OnRecoveryCompleted(error);
        }
    }
}

/// <summary>Helpers for callers that want a <see cref="Task"/> per write.</summary>
public static class JournalExtensions
{
    /// <summary>Queues <paramref name="write"/> and returns a task that completes when it is durable or failed.</summary>
    /// <remarks>Replaces the write's <see cref="JournalWrite.Observer"/>.</remarks>
    public static async Task WriteAsync(this IJournal journal, JournalWrite write, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(journal);
        ArgumentNullException.ThrowIfNull(write);
        var observer = new TaskObserver();
        write.Observer = observer;
        await journal.EnqueueAsync(write, cancellationToken).ConfigureAwait(false);
        await observer.Task.ConfigureAwait(false);
    }

    private sealed class TaskObserver : IJournalWriteObserver
    {
        private readonly TaskCompletionSource _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Task => _tcs.Task;

        public void OnWriteCompleted(JournalWrite write, Exception? error)
        {
            if (error is null)
            {
                _tcs.TrySetResult();
            }
            else
            {
                _tcs.TrySetException(error);
            }
        }
    }
}

/// <summary>Journal counters at one moment.</summary>
/// <param name="Batches">Transactions committed.</param>
/// <param name="Writes">Writes completed successfully.</param>
/// <param name="Events">Events stored.</param>
/// <param name="FailedWrites">Writes completed with an error.</param>
/// <param name="LastBatchSize">Writes in the most recent batch.</param>
/// <param name="MaxBatchSize">Largest batch so far (writes).</param>
/// <param name="AverageBatchSize">Writes per batch on average.</param>
/// <param name="AverageLatencyMs">Mean time from enqueue to completion, per write, in milliseconds.</param>
/// <param name="LastBatchLatencyMs">Time the most recent batch took to commit, in milliseconds.</param>
/// <param name="QueueDepth">Writes waiting to be written.</param>
public sealed record JournalMetrics(
    long Batches,
    long Writes,
    long Events,
    long FailedWrites,
    int LastBatchSize,
    int MaxBatchSize,
    double AverageBatchSize,
    double AverageLatencyMs,
    double LastBatchLatencyMs,
    int QueueDepth);
