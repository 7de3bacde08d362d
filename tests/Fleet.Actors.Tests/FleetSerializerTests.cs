using Akka.Actor;
using Akka.Configuration;
using Fleet.Actors.Hosting;
using Fleet.Actors.Partitions;
using Fleet.Actors.Serialization;
using Fleet.Actors.Streams;
using Fleet.Tracking.Network;

namespace Fleet.Actors.Tests;

/// <summary>
/// Fleet's binary serializer: what a cluster sends between nodes comes back equal, and rows journaled or snapshotted
/// before batches had ids (no trailing id) still read.
/// </summary>
public sealed class FleetSerializerTests : IDisposable
{
    private readonly ActorSystem _system = ActorSystem.Create("serializer", ConfigurationFactory.ParseString("akka.loglevel = WARNING")
        .WithFallback(FleetAkka.Config(new FleetAkkaOptions())));

    private FleetSerializer Serializer => (FleetSerializer)_system.Serialization.FindSerializerForType(typeof(TrackBatch));

    [Fact]
    public void BatchesWithIds_PositionsAndSnapshots_RoundTrip()
    {
        var batch = SampleBatches.Read(partitions: 1, lines: 200, perBatch: 200)[0] with { Id = new BatchId("origin", 42) };
        var back = (TrackBatch)RoundTrip(batch);
        Assert.Equal(batch.Id, back.Id);
        Assert.Equal(batch.Events, back.Events);

        var accepted = (BatchAccepted)RoundTrip(new BatchAccepted(batch.Events, batch.Sequences, batch.Clock, batch.Id));
        Assert.Equal(batch.Id, accepted.Id);

        var positions = (PositionsSeen)RoundTrip(new PositionsSeen("node-a", batch.Events[..5]));
        Assert.Equal("node-a", positions.Origin);
        Assert.Equal(batch.Events[..5], positions.Events);

        var snapshot = (PartitionSnapshot)RoundTrip(new PartitionSnapshot([1, 2, 3], [new BatchId("a", 1), new BatchId("b", 7)]));
        Assert.Equal([1, 2, 3], snapshot.States);
        Assert.Equal([new BatchId("a", 1), new BatchId("b", 7)], snapshot.Recent!);

        StopUpdate[] updates =
        [
            new(batch.Clock, "trip-1", new DateOnly(2026, 3, 2), "1027", "0018/00408", "1003440", 7, batch.Clock.AddMinutes(2), null, 95, StopUpdateStatus.Scheduled),
            new(batch.Clock, "trip-2", null, null, null, null, 0, null, null, null, StopUpdateStatus.TripCancelled),
        ];
        Assert.Equal(updates, ((StopUpdatesSeen)RoundTrip(new StopUpdatesSeen(updates))).Updates);

        var tracked = (BatchTracked)RoundTrip(new BatchTracked(3, [], 0, 12, default, Repeated: true));
        Assert.True(tracked.Repeated);
        Assert.Equal(12, tracked.AlreadyApplied);
    }

    [Fact]
    public void RowsWrittenBeforeBatchIds_StillRead()
    {
        var batch = SampleBatches.Read(partitions: 1, lines: 100, perBatch: 100)[0];
        // Today's bytes without an id end in one 'no id' flag; the older format stopped just before it.
        var current = Serializer.ToBinary(new BatchAccepted(batch.Events, batch.Sequences, batch.Clock));
        var old = current[..^1];
        var accepted = (BatchAccepted)Serializer.FromBinary(old, Serializer.Manifest(new BatchAccepted([], [], default)));
        Assert.Null(accepted.Id);
        Assert.Equal(batch.Events, accepted.Events);
        Assert.Null(FleetSerializer.ReadBatchAccepted(old).Id);

        // A snapshot before ids: the states, no count of recent ids after them.
        var snapshot = Serializer.ToBinary(new PartitionSnapshot([9, 8]));
        var oldSnapshot = (PartitionSnapshot)Serializer.FromBinary(snapshot[..^4], Serializer.Manifest(new PartitionSnapshot([])));
        Assert.Equal([9, 8], oldSnapshot.States);
        Assert.Empty(oldSnapshot.Recent!);
    }

    public void Dispose() => _system.Terminate().Wait(TimeSpan.FromSeconds(10));

    private object RoundTrip(object message) => Serializer.FromBinary(Serializer.ToBinary(message), Serializer.Manifest(message));
}
