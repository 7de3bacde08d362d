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

    /// <summary>The journal's rows of the store's region, read straight from its table.</summary>
    protected abstract Task<long> JournalRowsAsync(FleetAkkaOptions options);

    [Fact]
    public Task Region_RestartedOnTheSameStore_RecoversEveryVehicleAndAppliesNothingTwice() => RestartAsync(keepJournal: false);

    [Fact]
    public Task Region_KeepingItsJournal_RecoversTheSameWay() => RestartAsync(keepJournal: true);

    private async Task RestartAsync(bool keepJournal)
    {
        const int partitions = 4;
        var options = Store(partitions) with { KeepJournal = keepJournal };
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

            // 8 batches a partition, a snapshot every 3: the snapshot at 6 covers the first 6, which are deleted (Akka
            // keeps the sequence number going) unless the journal is kept whole.
            var expectedRows = (keepJournal ? 8 : 2) * partitions;
            var rows = await JournalRowsAsync(options);
            for (var wait = 0; rows != expectedRows && wait < 100; wait++)
            {
                await Task.Delay(100, ct);
                rows = await JournalRowsAsync(options);
            }

            Assert.Equal(expectedRows, rows);
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

    protected override async Task<long> JournalRowsAsync(FleetAkkaOptions options)
    {
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={options.Connection}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM journal WHERE persistence_id LIKE $region AND deleted = 0";
        command.Parameters.AddWithValue("$region", options.Region + "-%");
        return (long)(await command.ExecuteScalarAsync())!;
    }
}

[Trait("Category", "Integration")]
public sealed class PostgresPartitionRegionTests(PostgresFixture postgres) : PartitionRegionTests, IClassFixture<PostgresFixture>
{
    // Each test its own region name: the server is shared by the class.
    private readonly string _region = "vehicle-partition-" + Guid.NewGuid().ToString("N")[..8];

    protected override FleetAkkaOptions Store(int partitions) =>
        new() { Partitions = partitions, Journal = JournalKind.Postgres, Connection = postgres.Server.ConnectionString, Region = _region };

    protected override async Task<long> JournalRowsAsync(FleetAkkaOptions options)
    {
        await using var connection = new Npgsql.NpgsqlConnection(options.Connection);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM journal WHERE persistence_id LIKE @region AND NOT deleted";
        command.Parameters.AddWithValue("region", options.Region + "-%");
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
