using Akka.Actor;
using Fleet.Actors.Hosting;
using Fleet.Actors.Partitions;
using Fleet.Tracking;

namespace Fleet.Actors.Tests;

/// <summary>
/// The partitions behind cluster sharding, journaled with Akka.Persistence.Sql: a node that stops and a new one on the
/// same store carry on where it stopped, from the newest snapshot and the journal's tail, and apply nothing twice. The
/// same contract on each store Fleet supports (a SQLite file; a real PostgreSQL server the tests start).
/// </summary>
public abstract class PartitionRegionTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>The store of one test (a fresh one each time).</summary>
    protected abstract FleetAkkaOptions Store(int partitions);

    [Fact]
    public async Task Region_RestartedOnTheSameStore_RecoversEveryVehicleAndAppliesNothingTwice()
    {
        const int partitions = 4;
        var options = Store(partitions);
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

public sealed class SqlitePartitionRegionTests : PartitionRegionTests, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("fleet-akka-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    protected override FleetAkkaOptions Store(int partitions) =>
        new() { Partitions = partitions, Journal = JournalKind.Sqlite, Connection = Path.Combine(_dir, "fleet.db") };
}

[Trait("Category", "Integration")]
public sealed class PostgresPartitionRegionTests(PostgresFixture postgres) : PartitionRegionTests, IClassFixture<PostgresFixture>
{
    // Each test its own region name: the server is shared by the class.
    private readonly string _region = "vehicle-partition-" + Guid.NewGuid().ToString("N")[..8];

    protected override FleetAkkaOptions Store(int partitions) =>
        new() { Partitions = partitions, Journal = JournalKind.Postgres, Connection = postgres.Server.ConnectionString, Region = _region };
}
