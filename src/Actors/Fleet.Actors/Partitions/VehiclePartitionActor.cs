using System.Globalization;
using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Event;
using Akka.Persistence;
using Fleet.Tracking;
using Fleet.Tracking.Output;
using Fleet.Tracking.Partitions;
using Fleet.Tracking.Schedule;
using Fleet.Tracking.Vehicles;

namespace Fleet.Actors.Partitions;

/// <summary>What every partition actor tracks against: the schedule, tracking's thresholds and the predictor.</summary>
/// <param name="Catalog">The schedule.</param>
/// <param name="Options">Tracking's thresholds.</param>
/// <param name="Predictor">Arrival predictor (none when null); shared by the partitions, so it must be thread-safe.</param>
/// <param name="SnapshotEvery">Batches between two snapshots of a partition.</param>
/// <param name="Journaled">False when nothing survives the process anyway (<c>fleet serve</c> without a store): batches
/// are applied at once, neither journaled nor snapshotted, so memory does not grow with the stream.</param>
/// <param name="TruncateJournal">True to delete a partition's journaled batches behind each snapshot once it is saved
/// (recovery needs only the newest snapshot and the tail after it); false keeps every batch (an audit trail).</param>
/// <param name="PublishTopic">On a multi-node cluster: the DistributedPubSub topic each partition publishes its
/// <see cref="BatchTracked"/> to, so every node's live state gets what every partition derived (the asking stream then
/// gets an acknowledgement without the derived events); null: the derived events go back to the asker only.</param>
public sealed record TrackingDomain(ITripCatalog Catalog, TrackingOptions Options, IArrivalPredictor? Predictor = null, int SnapshotEvery = 200, bool Journaled = true,
    bool TruncateJournal = true, string? PublishTopic = null);

/// <summary>
/// One partition of the vehicle stream as a persistent, sharded actor: it owns a <see cref="VehiclePartition"/>,
/// journals each <see cref="TrackBatch"/> as one <see cref="BatchAccepted"/> event, applies it once stored, and answers
/// <see cref="BatchTracked"/> with what tracking derived. Every <see cref="TrackingDomain.SnapshotEvery"/> batches it
/// snapshots its vehicles (a copy, serialized at that moment) and, once the snapshot is saved, drops the older
/// snapshots and the journaled batches it covers (unless <see cref="TrackingDomain.TruncateJournal"/> is false), so a
/// store that runs for weeks does not grow with the stream; recovery is the newest snapshot plus the journal's tail,
/// applied with nothing published (no side effects while recovering).
/// </summary>
/// <remarks>A batch with an id (<see cref="TrackBatch.Id"/>) is applied once: the ids of the last
/// <see cref="RecentBatches.Capacity"/> batches are kept (journaled with each batch, snapshotted with the vehicles), and a
/// batch sent again (its stream timed out while the partition moved to another node) is answered as repeated.</remarks>
public sealed class VehiclePartitionActor : ReceivePersistentActor
{
    private readonly int _partition;
    private readonly VehiclePartition _vehicles;
    private readonly int _snapshotEvery;
    private readonly bool _journaled;
    private readonly bool _truncate;
    private readonly ListOutput _collected = new();
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly RecentBatches _recent = new();
    private readonly string? _topic;
    private readonly IActorRef? _mediator;
    private int _sinceSnapshot;
    private long _skipped;
    private long _recovered;
    private bool _fromSnapshot;

    /// <summary>Creates the actor of <paramref name="partition"/>.</summary>
    /// <param name="region">The region's name, the first part of the persistence id (a looping replay keeps each round apart).</param>
    /// <param name="partition">The partition.</param>
    /// <param name="domain">What it tracks against.</param>
    public VehiclePartitionActor(string region, int partition, TrackingDomain domain)
    {
        ArgumentNullException.ThrowIfNull(domain);
        _partition = partition;
        PersistenceId = region + "-" + partition.ToString(CultureInfo.InvariantCulture);
        _vehicles = new VehiclePartition(domain.Catalog, domain.Options, domain.Predictor);
        _snapshotEvery = Math.Max(1, domain.SnapshotEvery);
        _journaled = domain.Journaled;
        _truncate = domain.TruncateJournal;
        _topic = domain.PublishTopic;
        _mediator = _topic is null ? null : DistributedPubSub.Get(Context.System).Mediator;

        Recover<SnapshotOffer>(offer =>
        {
            if (offer.Snapshot is PartitionSnapshot s)
            {
                _vehicles.RestoreStates(s.States);
                foreach (var id in s.Recent ?? [])
                {
                    _recent.Add(id);
                }

                _fromSnapshot = true;
            }
        });
        Recover<BatchAccepted>(b =>
        {
            _vehicles.Track(b.Events, b.Sequences, b.Clock, Discard.Instance);
            _recent.Add(b.Id);
            _recovered++;
        });
        Command<TrackBatch>(Track);
        Command<GetPartitionStats>(_ => Sender.Tell(new PartitionStats(_partition, _vehicles.Trackers.Count, _vehicles.Applied, _vehicles.AlreadyApplied + _skipped,
            LastSequenceNr, _recovered, _fromSnapshot)));
        Command<SaveSnapshotSuccess>(ok =>
        {
            DeleteSnapshots(new SnapshotSelectionCriteria(ok.Metadata.SequenceNr - 1));
            if (_truncate)
            {
                // The snapshot holds every batch up to its sequence number: they are no longer needed to recover.
                DeleteMessages(ok.Metadata.SequenceNr);
            }
        });
        Command<SaveSnapshotFailure>(failed => _log.Warning(failed.Cause, "Partition {0}: snapshot at {1} failed", _partition, failed.Metadata.SequenceNr));
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(failed => _log.Warning(failed.Cause, "Partition {0}: deleting old snapshots failed", _partition));
        Command<DeleteMessagesSuccess>(_ => { });
        Command<DeleteMessagesFailure>(failed => _log.Warning(failed.Cause, "Partition {0}: deleting the journal up to {1} failed (it stays; the next snapshot tries again)", _partition, failed.ToSequenceNr));
    }

    /// <inheritdoc />
    public override string PersistenceId { get; }

    private void Track(TrackBatch batch)
    {
        if (batch.Id is { } id && _recent.Contains(id))
        {
            // Sent again: applied (and published) the first time.
            _skipped += batch.Events.Length;
            Sender.Tell(new BatchTracked(_partition, [], 0, batch.Events.Length, _vehicles.Drops(), Repeated: true));
            return;
        }

        // What a run before a restart applied is neither journaled nor applied again (counted as already applied).
        var (events, sequences, skipped) = _vehicles.Fresh(batch.Events, batch.Sequences);
        _skipped += skipped;
        if (events.Length == 0 && _vehicles.Trackers.Count == 0)
        {
            // Nothing to move the clock for: nothing to store either.
            Sender.Tell(new BatchTracked(_partition, [], 0, skipped, _vehicles.Drops()));
            return;
        }

        if (!_journaled)
        {
            Apply(new BatchAccepted(events, sequences, batch.Clock, batch.Id), skipped);
            return;
        }

        Persist(new BatchAccepted(events, sequences, batch.Clock, batch.Id), accepted =>
        {
            Apply(accepted, skipped);
            if (++_sinceSnapshot >= _snapshotEvery)
            {
                _sinceSnapshot = 0;
                SaveSnapshot(new PartitionSnapshot(_vehicles.SaveStates(), _recent.ToArray()));
            }
        });
    }

    // Tracks an accepted batch and answers the sender with what tracking derived.
    private void Apply(BatchAccepted accepted, int skipped)
    {
        var applied = _vehicles.Applied;
        _vehicles.Track(accepted.Events, accepted.Sequences, accepted.Clock, _collected);
        _recent.Add(accepted.Id);
        var tracked = new BatchTracked(_partition, [.. _collected.Events], (int)(_vehicles.Applied - applied), skipped, _vehicles.Drops());
        _collected.Events.Clear();
        if (_mediator is not null)
        {
            // Every node's live state gets it (this node's too); the asker gets the acknowledgement.
            _mediator.Tell(new Publish(_topic, tracked));
            Sender.Tell(tracked with { Derived = [] });
        }
        else
        {
            Sender.Tell(tracked);
        }
    }

    /// <summary>The ids of the batches a partition applied last (oldest forgotten first).</summary>
    public sealed class RecentBatches
    {
        /// <summary>Ids remembered: far more than a stream has unacknowledged at once.</summary>
        public const int Capacity = 16_384;

        private readonly HashSet<BatchId> _ids = [];
        private readonly Queue<BatchId> _order = new();

        /// <summary>Whether <paramref name="id"/> is among the remembered.</summary>
        public bool Contains(BatchId id) => _ids.Contains(id);

        /// <summary>Remembers <paramref name="id"/> (nothing when null), forgetting the oldest beyond <see cref="Capacity"/>.</summary>
        public void Add(BatchId? id)
        {
            if (id is null || !_ids.Add(id))
            {
                return;
            }

            _order.Enqueue(id);
            if (_order.Count > Capacity)
            {
                _ids.Remove(_order.Dequeue());
            }
        }

        /// <summary>The remembered ids, oldest first (a copy).</summary>
        public BatchId[] ToArray() => [.. _order];
    }

    /// <summary>The output of recovery: tracking's derived events are dropped (they were published before the restart).</summary>
    private sealed class Discard : ITrackingOutput
    {
        public static readonly Discard Instance = new();

        public void Publish(DerivedEvent derived)
        {
        }
    }
}
