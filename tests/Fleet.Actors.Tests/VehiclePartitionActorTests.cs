using Akka.Actor;
using Akka.Configuration;
using Fleet.Actors.Hosting;
using Fleet.Actors.Partitions;
using Fleet.Tracking;

namespace Fleet.Actors.Tests;

/// <summary>
/// The partition actor on its own (Akka.TestKit): every local message goes through Fleet's serializer
/// (<c>serialize-messages</c>), and what it answers is what plain tracking derives from the same batches.
/// </summary>
public sealed class VehiclePartitionActorTests() : global::Akka.TestKit.Xunit.TestKit(
    ConfigurationFactory.ParseString("akka.actor.serialize-messages = on\nakka.actor.serialize-creators = off")
        .WithFallback(FleetAkka.Config(new FleetAkkaOptions())))
{
    [Fact]
    public void Batches_ThroughTheActor_AnswerWhatPlainTrackingDerives()
    {
        var batches = SampleBatches.Read(partitions: 2, lines: 20_000, perBatch: 2_000).Where(b => b.Partition == 1).ToList();
        // And a batch a real feed sends now and then: a repeated report and one from ten minutes before.
        var sample = batches[^1].Events[^1];
        var late = sample;
        late.EventTime -= TimeSpan.FromMinutes(10);
        batches.Add(new TrackBatch(1, [sample, late], [0, 0], batches[^1].Clock));
        var expected = SampleBatches.TrackPlain(batches, out var expectedDrops);
        var actor = Sys.ActorOf(Props.Create(() => new VehiclePartitionActor("test", 1, new TrackingDomain(SampleBatches.Catalog, new TrackingOptions(), null, 200))));

        var derived = new List<Fleet.Tracking.Output.DerivedEvent>();
        BatchTracked? last = null;
        for (var i = 0; i < batches.Count; i++)
        {
            actor.Tell(batches[i], TestActor);
            var reply = ExpectMsg<BatchTracked>(TimeSpan.FromSeconds(30), cancellationToken: TestContext.Current.CancellationToken);
            Assert.Equal(1, reply.Partition);
            Assert.Equal(batches[i].Events.Length, reply.Applied);
            Assert.Equal(0, reply.AlreadyApplied);
            Assert.Equal(expected[i], reply.Derived);
            derived.AddRange(reply.Derived);
            last = reply;
        }

        // The partition's drop counters travel with each answer (the sample's first lines have unknown journeys).
        Assert.Equal(expectedDrops, last!.Drops);
        Assert.True(expectedDrops.Late + expectedDrops.Duplicates + expectedDrops.Corrected + expectedDrops.Unmatched > 0, $"no drops to compare: {expectedDrops}");
        // The sample's first lines: buses reach stops and start trips.
        Assert.Contains(derived, d => d.Type == Fleet.Tracking.Output.DerivedEventType.Arrival);
        Assert.Contains(derived, d => d.Type == Fleet.Tracking.Output.DerivedEventType.TripStarted);
        actor.Tell(new GetPartitionStats(1), TestActor);
        var stats = ExpectMsg<PartitionStats>(cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(batches.Sum(b => b.Events.Length), stats.Applied);
        Assert.Equal(batches.Count, stats.LastSequenceNr);
    }

    [Fact]
    public void SameBatchTwice_SecondAppliesNothing()
    {
        var batch = SampleBatches.Read(partitions: 1, lines: 2_000, perBatch: 2_000)[0];
        var actor = Sys.ActorOf(Props.Create(() => new VehiclePartitionActor("twice", 0, new TrackingDomain(SampleBatches.Catalog, new TrackingOptions()))));
        actor.Tell(batch, TestActor);
        Assert.Equal(batch.Events.Length, ExpectMsg<BatchTracked>(TimeSpan.FromSeconds(30), cancellationToken: TestContext.Current.CancellationToken).Applied);
        actor.Tell(batch, TestActor);
        var again = ExpectMsg<BatchTracked>(TimeSpan.FromSeconds(30), cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(0, again.Applied);
        Assert.Equal(batch.Events.Length, again.AlreadyApplied);
    }

    [Fact]
    public void BatchWithAnId_SentAgain_IsARepeat_EvenAfterTheActorRecovered()
    {
        // A live batch: no source sequence numbers, so only its id can tell that it came before.
        var read = SampleBatches.Read(partitions: 1, lines: 1_000, perBatch: 1_000)[0];
        var batch = read with { Sequences = new long[read.Events.Length], Id = new BatchId("stream-a", 1) };
        var domain = new TrackingDomain(SampleBatches.Catalog, new TrackingOptions());
        var actor = Sys.ActorOf(Props.Create(() => new VehiclePartitionActor("repeat", 0, domain)));
        actor.Tell(batch, TestActor);
        var first = ExpectMsg<BatchTracked>(TimeSpan.FromSeconds(30), cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(batch.Events.Length, first.Applied);
        Assert.False(first.Repeated);

        // The same events under another id are new to it (nothing but the id marks a batch).
        actor.Tell(batch with { Id = new BatchId("stream-a", 2), Events = batch.Events[..10], Sequences = batch.Sequences[..10] }, TestActor);
        Assert.False(ExpectMsg<BatchTracked>(TimeSpan.FromSeconds(30), cancellationToken: TestContext.Current.CancellationToken).Repeated);

        // Stopped and started again on the same journal (a partition moved to another node): the id is remembered.
        Watch(actor);
        Sys.Stop(actor);
        ExpectTerminated(actor, cancellationToken: TestContext.Current.CancellationToken);
        var recovered = Sys.ActorOf(Props.Create(() => new VehiclePartitionActor("repeat", 0, domain)));
        recovered.Tell(batch, TestActor);
        var again = ExpectMsg<BatchTracked>(TimeSpan.FromSeconds(30), cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(again.Repeated);
        Assert.Equal(0, again.Applied);
        Assert.Empty(again.Derived);
        recovered.Tell(new GetPartitionStats(0), TestActor);
        Assert.Equal(batch.Events.Length + 10, ExpectMsg<PartitionStats>(cancellationToken: TestContext.Current.CancellationToken).Applied);
    }
}
