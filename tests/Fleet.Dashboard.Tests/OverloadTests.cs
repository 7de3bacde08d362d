using System.IO.Compression;
using Fleet.Actors.Hosting;
using Fleet.Dashboard.Hosting;
using Fleet.Dashboard.Sources;
using Fleet.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Fleet.Dashboard.Tests;

/// <summary>Runs alone: the test reads the process's managed heap, which parallel tests would inflate.</summary>
[CollectionDefinition(nameof(OverloadTests), DisableParallelization = true)]
public sealed class OverloadCollection;

/// <summary>More input than the persisted pipeline can take: memory stays bounded and the backpressure shows in /metrics.</summary>
[Collection(nameof(OverloadTests))]
public sealed class OverloadTests
{
    [Fact]
    [Trait("Category", "Integration")]
    public async Task ServeStore_ReplayFarFasterThanTheJournal_BackpressureInMetricsAndMemoryBounded()
    {
        var ct = TestContext.Current.CancellationToken;
        var dir = Directory.CreateTempSubdirectory("fleet-overload-").FullName;
        try
        {
            // 20,000 lines of the busy part of the sample city at the fastest speed: about 400 s of recording in
            // 0.4 s, i.e. some 50,000 events/s offered to persisted tracking, which takes a few thousand per second
            // here (docs/BENCHMARKS.md, persistent tracking): ten times and more what it can take.
            var lines = new List<string>();
            using (var gz = new GZipStream(File.OpenRead(Path.Combine(RepoPaths.SampleData, "recording.hfp.gz")), CompressionMode.Decompress))
            using (var reader = new StreamReader(gz))
            {
                for (var i = 0; i < 120_000 && reader.ReadLine() is { } line; i++)
                {
                    if (i >= 100_000)
                    {
                        lines.Add(line);
                    }
                }
            }

            var file = Path.Combine(dir, "slice.hfp");
            await File.WriteAllLinesAsync(file, lines, ct);
            await using var cluster = new TrackingCluster(new FleetAkkaOptions { Journal = JournalKind.Sqlite, Connection = Path.Combine(dir, "store.db") });
            var network = GtfsNetwork.Load(Path.Combine(RepoPaths.SampleData, "gtfs.zip"));
            var baseline = GC.GetTotalMemory(forceFullCollection: true);
            await using var host = await TestHost.StartAsync(network: network, configure: s =>
            {
                s.AddSingleton(cluster);
                s.AddReplay(new ReplayOptions { Path = file, Speed = ReplayOptions.MaxSpeed, ShiftToNow = false });
            });

            double maxQueued = 0, maxHeapMb = 0;
            var sawBackpressure = false;
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (true)
            {
                var m = FaultTests.ParseMetrics(await host.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative), ct));
                var queued = m.GetValueOrDefault("fleet_tracking_stream_pending");
                maxQueued = Math.Max(maxQueued, queued);
                maxHeapMb = Math.Max(maxHeapMb, (GC.GetTotalMemory(false) - baseline) / 1e6);
                // Backpressure: the replay has read ahead of what tracking has handled, and waits (the stream's buffer,
                // the group being cut and the batches awaiting acknowledgement hold the difference, up to their sizes).
                sawBackpressure |= queued > 1_000;
                if (m.GetValueOrDefault("fleet_journal_events_total") >= 18_000 && sawBackpressure)
                {
                    break;
                }

                Assert.True(DateTime.UtcNow < until, $"timed out: max queued {maxQueued}, journal {m.GetValueOrDefault("fleet_journal_events_total")}");
                await Task.Delay(100, ct);
            }

            Assert.True(sawBackpressure, "the stream never filled: the load did not exceed what tracking takes");
            // Bounded: the source's buffer (8,192), the group being cut (4,096) and at most 64 batches in flight plus one
            // in the sink, each at most a group; with the sample city's partitions far less.
            Assert.True(maxQueued <= 8_192 + (66 * 4_096), $"{maxQueued} items pending");
            // The whole 20,000-line replay plus tracking state stays far below a size that would show unbounded queues.
            Assert.True(maxHeapMb < 300, $"managed heap grew by {maxHeapMb:F0} MB");
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }
    }
}
