using Fleet.Ingest.Events;
using Fleet.Tracking.Output;
using Fleet.Tracking.Partitions;

namespace Fleet.Actors.Partitions;

/// <summary>Marks Fleet's messages and persisted events: they bind to <see cref="Serialization.FleetSerializer"/>.</summary>
public interface IFleetMessage;

/// <summary>A message for one partition of the vehicle stream (the shard region routes it by <see cref="Partition"/>).</summary>
public interface IPartitionMessage : IFleetMessage
{
    /// <summary>The partition (0 to partitions - 1).</summary>
    public int Partition { get; }
}

/// <summary>
/// Command: track a batch of the partition's vehicle events, then move its stream clock. Answered with
/// <see cref="BatchTracked"/> once the batch is journaled and applied: the acknowledgement the ingest graph waits for.
/// </summary>
/// <param name="Partition">The partition.</param>
/// <param name="Events">The events, in ingest order (may be empty: the clock alone moves).</param>
/// <param name="Sequences">Each event's source sequence number (0 when none): see <c>VehiclePartition</c>.</param>
/// <param name="Clock">The stream clock after the batch, UTC.</param>
/// <param name="Id">The batch's identity (its stream and number): a partition applies a batch with an id once, so a
/// stream may send it again when its acknowledgement does not come (the partition moved to another node); null: no
/// identity, never sent twice.</param>
public sealed record TrackBatch(int Partition, VehicleEvent[] Events, long[] Sequences, DateTime Clock, BatchId? Id = null) : IPartitionMessage;

/// <summary>A batch's identity: the stream that cut it and its number in that stream.</summary>
/// <param name="Origin">The stream (unique per stream and process).</param>
/// <param name="Number">The batch's number in that stream.</param>
public sealed record BatchId(string Origin, long Number);

/// <summary>Reply to <see cref="TrackBatch"/>: what tracking derived from the batch, and what it skipped.</summary>
/// <param name="Partition">The partition.</param>
/// <param name="Derived">The derived events (arrivals, predictions, alerts...), in the order tracking made them.</param>
/// <param name="Applied">Events applied.</param>
/// <param name="AlreadyApplied">Events skipped because their vehicle had applied them before a restart.</param>
/// <param name="Drops">The partition's totals of late, duplicate and corrected events and unknown journeys after the batch.</param>
/// <param name="Repeated">True when the partition had already applied this batch (its <see cref="TrackBatch.Id"/> came
/// again): nothing was applied this time.</param>
public sealed record BatchTracked(int Partition, DerivedEvent[] Derived, int Applied, int AlreadyApplied, TrackingDrops Drops = default, bool Repeated = false) : IFleetMessage;

/// <summary>Journaled: a batch the partition accepted (its inputs: replaying them through tracking rebuilds the state).</summary>
/// <param name="Events">The events.</param>
/// <param name="Sequences">Their source sequence numbers.</param>
/// <param name="Clock">The stream clock after the batch.</param>
/// <param name="Id">The batch's identity, when it had one (recovery remembers it: the batch is not applied again).</param>
public sealed record BatchAccepted(VehicleEvent[] Events, long[] Sequences, DateTime Clock, BatchId? Id = null) : IFleetMessage;

/// <summary>Snapshotted: the partition's vehicles (<c>VehiclePartition.SaveStates</c>, a copy taken when the snapshot was made).</summary>
/// <param name="States">The serialized states.</param>
/// <param name="Recent">The ids of the batches applied most recently (a batch sent again after the snapshot is still
/// known); empty when none had ids.</param>
public sealed record PartitionSnapshot(byte[] States, BatchId[]? Recent = null) : IFleetMessage;

/// <summary>Query: the partition's figures.</summary>
/// <param name="Partition">The partition.</param>
public sealed record GetPartitionStats(int Partition) : IPartitionMessage;

/// <summary>Reply to <see cref="GetPartitionStats"/>.</summary>
/// <param name="Partition">The partition.</param>
/// <param name="Vehicles">Vehicles tracked.</param>
/// <param name="Applied">Events applied since the actor started (recovery included).</param>
/// <param name="AlreadyApplied">Events skipped as applied before.</param>
/// <param name="LastSequenceNr">The journal's sequence number of the last batch.</param>
/// <param name="Recovered">Batches replayed from the journal when the actor started.</param>
/// <param name="RecoveredFromSnapshot">True when recovery started from a snapshot.</param>
public sealed record PartitionStats(int Partition, int Vehicles, long Applied, long AlreadyApplied, long LastSequenceNr, long Recovered, bool RecoveredFromSnapshot) : IFleetMessage;
