using Akka.Actor;
using Fleet.Akka.Hosting;
using Fleet.Akka.Partitions;
using Fleet.Tracking;

namespace Fleet.Actors.Tests.Akka;

/// <summary>
/// The partitions behind cluster sharding, journaled with Akka.Persistence.Sql on a SQLite file: a node that stops
/// and a new one on the same file carry on where it stopped, from the newest snapshot and the journal's tail, and apply
/// nothing twice.
/// </summary>
public sealed class PartitionRegionTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("fleet-akka-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Region_RestartedOnTheSameSqliteFile_RecoversEveryVehicleAndAppliesNothingTwice()
    {
        const int partitions = 4;
        var options = new FleetAkkaOptions { Partitions = partitions, Journal = JournalKind.Sqlite, Connection = Path.Combine(_dir, "fleet.db") };
        var domain = new TrackingDomain(SampleBatches.Catalog, new TrackingOptions(), SnapshotEvery: 3);
        var batches = SampleBatches.Read(partitions, lines: 8_000, perBatch: 1_000);
        var ct = TestContext.Current.CancellationToken;

        var before = new PartitionStats[partitions];
        var (system, region) = await FleetAkka.StartAsync(options, domain, ct);
        try
        {
            foreach (var b in batches)
            {
                var tracked = await region.Ask<BatchTracked>(b, Timeout, ct);
                Assert.Equal(b.Events.Length, tracked.Applied);
            }

            for (var p = 0; p < partitions; p++)
            {
                before[p] = await region.Ask<PartitionStats>(new GetPartitionStats(p), Timeout, ct);
            }
        }
        finally
        {
            await system.Terminate();
        }

        Assert.True(before.Sum(s => s.Vehicles) >= 40, $"{before.Sum(s => s.Vehicles)} vehicles in the sample's first lines");
        (system, region) = await FleetAkka.StartAsync(options, domain, ct);
        try
        {
            for (var p = 0; p < partitions; p++)
            {
                var after = await region.Ask<PartitionStats>(new GetPartitionStats(p), Timeout, ct);
                Assert.Equal(before[p].Vehicles, after.Vehicles);
                Assert.Equal(before[p].LastSequenceNr, after.LastSequenceNr);
                // 8 batches a partition, a snapshot every 3: recovery starts from the one at 6 and replays 2.
                Assert.True(after.RecoveredFromSnapshot, $"partition {p} recovered without its snapshot");
                Assert.Equal(2, after.Recovered);
            }

            // The source starts again from an earlier point (its last two batches): nothing of them is applied again.
            foreach (var b in batches.Skip(batches.Count - 2 * partitions))
            {
                var again = await region.Ask<BatchTracked>(b, Timeout, ct);
                Assert.Equal(0, again.Applied);
                Assert.Equal(b.Events.Length, again.AlreadyApplied);
            }
        }
        finally
        {
            await system.Terminate();
        }
    }
}
