using System.Text;
using Fleet.Ingest.Events;
using Fleet.Tracking.Output;
using Fleet.Tracking.Replay;

namespace Fleet.Tracking.Tests;

public sealed class TrackingEngineTests
{
    private const int Start = 8 * 3600;

    private static List<VehicleEvent> Interleaved(TestRoute route)
    {
        var all = new List<VehicleEvent>();
        for (var v = 0; v < 6; v++)
        {
            route.AddTrip($"T{v}", Start + (v * 300));
        }

        for (var v = 0; v < 6; v++)
        {
            // Vehicle 3 runs 5 min late and catches up with vehicle 4's schedule slot: bunching.
            all.AddRange(TestRoute.Drive(route, $"0001/{v:00000}", Start + (v * 300), lateSeconds: v == 3 ? 240 : 0).Events);
        }

        return [.. all.OrderBy(e => e.EventTime).ThenBy(e => e.VehicleId, StringComparer.Ordinal)];
    }

    private static string RunToJson(TestRoute route, List<VehicleEvent> events, int partitions, int batch)
    {
        using var memory = new MemoryStream();
        using (var json = new JsonLinesOutput(memory, leaveOpen: true))
        {
            var engine = new TrackingEngine(route.Catalog, new TrackingOptions(), json, partitions, batch);
            foreach (var e in events)
            {
                engine.Post(e);
            }

            engine.Complete();
        }

        return Encoding.UTF8.GetString(memory.ToArray());
    }

    [Fact]
    public void Replay_DifferentPartitionCounts_ByteIdenticalOutput()
    {
        var route = new TestRoute();
        var events = Interleaved(route);

        var one = RunToJson(route, events, partitions: 1, batch: 500);
        var four = RunToJson(route, events, partitions: 4, batch: 500);
        var again = RunToJson(route, events, partitions: 4, batch: 500);

        Assert.Equal(one, four);
        Assert.Equal(four, again);
        Assert.Equal(24, one.Split('\n').Count(l => l.StartsWith("{\"type\":\"arrival\"", StringComparison.Ordinal)));
    }

    [Fact]
    public void Replay_JsonLine_HasRequiredFields()
    {
        var route = new TestRoute();
        var events = Interleaved(route);

        var lines = RunToJson(route, events, 2, 1000).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        var arrival = lines.First(l => l.Contains("\"type\":\"arrival\"", StringComparison.Ordinal));
        Assert.Matches("^\\{\"type\":\"arrival\",\"time\":\"2026-03-02T08:00:00.000Z\",\"vehicle\":\"0001/00000\",\"trip\":\"T0\",\"route\":\"10\",\"direction\":0,\"stop\":\"S0\",\"seq\":1,", arrival);
        var bunching = Assert.Single(lines, l => l.Contains("\"kind\":\"bunching\"", StringComparison.Ordinal));
        Assert.Contains("\"vehicle\":\"0001/00004\"", bunching, StringComparison.Ordinal);
        Assert.Contains("\"other\":\"0001/00003\"", bunching, StringComparison.Ordinal);
    }

    [Fact]
    public void Counters_ReadWhileOverlappedBatchesRun_OnlyGrowAndEndEqualToSerial()
    {
        var route = new TestRoute();
        var events = Interleaved(route);

        static TrackingCounters Run(TestRoute route, List<VehicleEvent> events, bool overlap, bool read)
        {
            using var json = new JsonLinesOutput(Stream.Null);
            var engine = new TrackingEngine(route.Catalog, new TrackingOptions(), json, partitions: 2, batchSize: 50)
            {
                OverlapBatches = overlap,
            };
            using var done = new ManualResetEventSlim();
            var reader = Task.Run(() =>
            {
                // Another thread reads the counters throughout (a status line while a replay runs).
                var last = engine.Counters;
                while (read && !done.IsSet)
                {
                    var now = engine.Counters;
                    Assert.True(now.Events >= last.Events && now.Derived >= last.Derived && now.Vehicles >= last.Vehicles,
                        $"counters went back: {last} then {now}");
                    last = now;
                }
            }, TestContext.Current.CancellationToken);
            foreach (var e in events)
            {
                engine.Post(e);
            }

            engine.Complete();
            done.Set();
            reader.GetAwaiter().GetResult();
            return engine.Counters;
        }

        var serial = Run(route, events, overlap: false, read: false);
        var overlapped = Run(route, events, overlap: true, read: true);

        Assert.Equal(serial, overlapped);
        Assert.Equal(events.Count, overlapped.Events);
        Assert.Equal(6, overlapped.Vehicles);
    }
}
