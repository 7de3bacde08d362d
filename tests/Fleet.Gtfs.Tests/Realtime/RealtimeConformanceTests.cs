using Fleet.Gtfs.Inspection;
using Fleet.Gtfs.Realtime;
using Fleet.Gtfs.Tests.Static;
using Fleet.Ingest.Events;
using Fleet.Testing;
using Xunit;

namespace Fleet.Gtfs.Tests.Realtime;

/// <summary>
/// Every file in ../shared/data/gtfs-rt against the figures in its PROVENANCE.md (entity counts per file, join
/// rates per folder). Stop-time-update counts were taken independently with
/// <c>protoc --decode=transit_realtime.FeedMessage gtfs-realtime.proto &lt; FILE | grep -c 'stop_time_update {'</c>.
/// </summary>
public sealed class RealtimeConformanceTests
{
    public static TheoryData<string, int, int, int> Files => new()
    {
        // file, trip updates, vehicle positions, alerts (PROVENANCE.md)
        { "caltrain_2023-11-07/trip-updates_1699405534.pb", 19, 0, 0 },
        { "caltrain_2023-11-07/vehicle-positions_1699405559.pb", 0, 14, 0 },
        { "bart_2019-08-07/alerts_1565199942.pb", 0, 0, 1 },
        { "bart_2019-08-07/trip-updates_1565199921.pb", 91, 0, 0 },
        { "usf-bullrunner_2017-09-13/vehicle-positions_1505314375.pb", 0, 10, 0 },
        { "edge-cases/hart-tampa_trip-updates_empty_1615106995.pb", 0, 0, 0 },
        { "soundtransit-link_2023-05-10/trip-updates_1683740698.json", 14, 0, 0 },
        { "soundtransit-link_2023-05-10/trip-updates_1683740798.json", 14, 0, 0 },
        { "soundtransit-link_2023-05-10/trip-updates_1683746223_bad.json", 14, 0, 0 },
        { "soundtransit-link_2023-05-10/vehicle-positions_1683740698.json", 0, 14, 0 },
        { "soundtransit-link_2023-05-10/vehicle-positions_1683740798.json", 0, 14, 0 },
        { "soundtransit-link_2023-05-10/vehicle-positions_1683746223_bad.json", 0, 14, 0 },
    };

    [Theory]
    [MemberData(nameof(Files))]
    public void Decode_RealFile_EntityCountsMatchProvenance(string file, int tripUpdates, int vehicles, int alerts)
    {
        var feed = GtfsRtDecoder.DecodeFile(SharedData.RequireFile(Path.Combine("gtfs-rt", file)));

        Assert.Equal(tripUpdates, feed.Entity.Count(e => e.TripUpdate is not null));
        Assert.Equal(vehicles, feed.Entity.Count(e => e.Vehicle is not null));
        Assert.Equal(alerts, feed.Entity.Count(e => e.Alert is not null));
    }

    [Fact]
    public void Inspect_Caltrain_AllNineteenTripsAndFourteenVehiclesJoinCleanly()
    {
        var schedule = StaticConformanceTests.Loaded(SharedData.RequireFile("gtfs-static/caltrain_2023-09-23_2024-06-01.zip"));

        var folder = GtfsInspector.InspectRealtimeFolder(SharedData.RequireDirectory("gtfs-rt/caltrain_2023-11-07"), schedule);

        var tu = folder.Files.Single(f => f.File!.StartsWith("trip-updates", StringComparison.Ordinal));
        Assert.Equal((19, 19, 19), (tu.TripUpdates, tu.TripsMatched, tu.TripsTotal));
        Assert.Equal((220, 220), (tu.StopsMatched, tu.StopsTotal));
        Assert.Equal("2023-11-08T01:05:34Z", tu.Timestamp);
        var vp = folder.Files.Single(f => f.File!.StartsWith("vehicle-positions", StringComparison.Ordinal));
        Assert.Equal((14, 14, 14), (vp.VehiclePositions, vp.TripsMatched, vp.TripsTotal));
        Assert.Empty(folder.Totals.Findings);
    }

    [Fact]
    public void Inspect_Bart_65Of91TripsJoinAndUnknownOnesAreReported()
    {
        // PROVENANCE.md: trip_id 65/91, stop_id 47/47 (1060 stop_time_updates by protoc, all with known stop ids).
        var schedule = StaticConformanceTests.Loaded(SharedData.RequireFile("gtfs-static/bart_2019-02-11_2020-02-10.zip"));

        var s = GtfsInspector.InspectRealtime(SharedData.RequireFile("gtfs-rt/bart_2019-08-07/trip-updates_1565199921.pb"), schedule);

        Assert.Equal((65, 91), (s.TripsMatched, s.TripsTotal));
        Assert.Equal((1060, 1060), (s.StopsMatched, s.StopsTotal));
        Assert.True(s.Findings.GetValueOrDefault("E003") > 0);
        Assert.False(s.Findings.ContainsKey("E011"));
    }

    [Fact]
    public void Inspect_SoundTransitJson_AllTripsAndStopsJoin()
    {
        // PROVENANCE.md: trip_id 30/30, stop_id 38/38 over the folder; every entity joins.
        var schedule = StaticConformanceTests.Loaded(SharedData.RequireFile("gtfs-static/soundtransit-link_2023-03-18_2023-07-30.zip"));

        var folder = GtfsInspector.InspectRealtimeFolder(SharedData.RequireDirectory("gtfs-rt/soundtransit-link_2023-05-10"), schedule);

        Assert.Equal(6, folder.Files.Count);
        Assert.Equal((42, 42), (folder.Totals.TripUpdates, folder.Totals.VehiclePositions));
        Assert.Equal(84, folder.Totals.TripsTotal);
        Assert.Equal(folder.Totals.TripsTotal, folder.Totals.TripsMatched);
        Assert.Equal(folder.Totals.StopsTotal, folder.Totals.StopsMatched);
        Assert.False(folder.Totals.Findings.ContainsKey("E003"));
        Assert.False(folder.Totals.Findings.ContainsKey("E011"));
    }

    [Fact]
    public void Inspect_BullRunner_RoutesAllKnown()
    {
        // PROVENANCE.md: route_id 6/6; positions carry no trip_id (W006 each).
        var schedule = StaticConformanceTests.Loaded(SharedData.RequireFile("gtfs-static/usf-bullrunner_2015-01-01_2020-12-31.zip"));

        var s = GtfsInspector.InspectRealtime(SharedData.RequireFile("gtfs-rt/usf-bullrunner_2017-09-13/vehicle-positions_1505314375.pb"), schedule);

        Assert.Equal(10, s.VehiclePositions);
        Assert.False(s.Findings.ContainsKey("E004"));
        Assert.Equal(10, s.Findings["W006"]);
    }

    [Fact]
    public void Normalize_NycRecording_OneEventPerStopTimeUpdateAndPosition()
    {
        // PROVENANCE.md: 80 messages, 12428 TripUpdates, 12428 VehiclePositions, 220838 StopTimeUpdates in total.
        var folder = SharedData.RequireDirectory("gtfs-rt/nyct-subway-ACE_2024-02-08_80x60s");
        var files = Directory.GetFiles(folder, "*.pb");
        var events = new List<VehicleEvent>(240_000);

        foreach (var file in files)
        {
            GtfsRtNormalizer.Normalize(GtfsRtDecoder.DecodeFile(file), DateTime.UnixEpoch, null, events);
        }

        Assert.Equal(80, files.Length);
        Assert.Equal(12428, events.Count(e => e.Type == EventType.Vp));
        Assert.Equal(220838, events.Count(e => e.Type == EventType.TripUpdateStop));
    }

    [Fact]
    public void Inspect_CorruptFile_ReportsErrorWithoutThrowing()
    {
        var path = Path.Combine(Path.GetTempPath(), $"fleet-corrupt-{Guid.NewGuid():N}.pb");
        File.WriteAllBytes(path, [0x0A, 0x05, 0x01]);
        try
        {
            var s = GtfsInspector.InspectRealtime(path, null);

            Assert.NotNull(s.Error);
            Assert.Contains("corrupt", s.Error, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
