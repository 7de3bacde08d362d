using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Fleet.Gtfs.Inspection;
using Fleet.Gtfs.Realtime;
using Fleet.Testing;
using Google.Protobuf;
using TransitRealtime;
using Xunit;

namespace Fleet.Gtfs.Tests.Realtime;

/// <summary>GTFS-Realtime archives as shared (folder, .zip, .tar.gz), and agencies' JSON quirks (Auckland's).</summary>
public sealed class GtfsRtArchiveTests : IDisposable
{
    // Auckland Transport's API, as recorded: a wrapper, one stop_time_update object, float seconds, numeric enums.
    private const string Auckland = """
        {"status": "OK", "error": null, "response": {"header": {"incrementality": 0, "timestamp": 1463572844.498, "gtfs_realtime_version": "1.0"},
         "entity": [{"is_deleted": false, "id": "e1", "trip_update": {"stop_time_update": {"departure": {"time": 1463572834.596, "delay": -86398},
           "stop_id": "4502", "stop_sequence": 13, "schedule_relationship": 0}, "timestamp": 1463572834.596,
           "trip": {"trip_id": "1982016691-20160415132758_v40.14", "schedule_relationship": 0, "route_id": "98201-20160415132758_v40.14"}, "vehicle": {"id": "3079"}}}]}}
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("fleet-rt-archive-").FullName;

    [Fact]
    public void AucklandJson_WrapperLoneStopTimeUpdateFloatSeconds_Decodes()
    {
        var feed = GtfsRtDecoder.DecodeJson(Auckland);

        Assert.Equal("1.0", feed.Header.GtfsRealtimeVersion);
        Assert.Equal(1463572844UL, feed.Header.Timestamp);
        var update = Assert.Single(feed.Entity).TripUpdate;
        var stop = Assert.Single(update.StopTimeUpdate);
        Assert.Equal("4502", stop.StopId);
        Assert.Equal(13u, stop.StopSequence);
        Assert.Equal(1463572834L, stop.Departure.Time);
        Assert.Equal(-86398, stop.Departure.Delay);
        Assert.Equal("3079", update.Vehicle.Id);
    }

    [Fact]
    public void WrapperThatSaysTheRequestFailed_IsRejectedWithItsStatus()
    {
        var ex = Assert.Throws<GtfsRtFormatException>(() => GtfsRtDecoder.DecodeJson("""{"status": "ERROR", "error": "rate limited", "response": {}}"""));

        Assert.Contains("status 'ERROR'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("rate limited", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TarGzZipAndFolder_GiveTheSnapshotsInNameOrder_AndInspectCountsThem()
    {
        var pb = new FeedMessage { Header = new FeedHeader { GtfsRealtimeVersion = "2.0", Timestamp = 7 } };
        pb.Entity.Add(new FeedEntity { Id = "v", Vehicle = new VehiclePosition { Vehicle = new VehicleDescriptor { Id = "bus-1" } } });
        var files = new Dictionary<string, byte[]>
        {
            ["day/20160519000200.json"] = Encoding.UTF8.GetBytes(Auckland),
            ["day/20160519000100.pb"] = pb.ToByteArray(),
            ["day/20160519000300.json"] = Encoding.UTF8.GetBytes("{\"not\": \"a feed\""),
            ["day/README.txt"] = Encoding.UTF8.GetBytes("not a snapshot"),
        };
        var folder = Path.Combine(_dir, "folder");
        foreach (var (name, bytes) in files)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(folder, name))!);
            File.WriteAllBytes(Path.Combine(folder, name), bytes);
        }

        var tgz = Path.Combine(_dir, "day.tar.gz");
        using (var gz = new GZipStream(File.Create(tgz), CompressionLevel.Fastest))
        {
            TarFile.CreateFromDirectory(folder, gz, includeBaseDirectory: false);
        }

        var zip = Path.Combine(_dir, "day.zip");
        ZipFile.CreateFromDirectory(folder, zip);

        foreach (var archive in new[] { folder, tgz, zip })
        {
            var names = GtfsRtArchive.Read(archive).Select(e => e.Name.Replace('\\', '/')).ToList();
            Assert.Equal(["day/20160519000100.pb", "day/20160519000200.json", "day/20160519000300.json"], names);
            if (archive != folder)
            {
                Assert.True(GtfsInspector.IsRealtimeArchive(archive), archive);
                var summary = GtfsInspector.InspectRealtimeArchive(archive, null);
                Assert.Equal(3, summary.Files.Count);
                Assert.Equal(1, summary.Totals.VehiclePositions);
                Assert.Equal(1, summary.Totals.TripUpdates);
                // The broken snapshot is named with its reason, and counted; the others are read.
                Assert.Contains("invalid GTFS-Realtime JSON", summary.Files[2].Error, StringComparison.Ordinal);
                Assert.Equal("1 of 3 files could not be decoded", summary.Totals.Error);
            }
        }
    }

    [Fact]
    public void TruncatedTarGz_IsAnErrorThatNamesTheArchive()
    {
        var folder = Path.Combine(_dir, "t");
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, "a.json"), Encoding.UTF8.GetBytes(Auckland));
        File.WriteAllBytes(Path.Combine(folder, "b.bin"), RandomNumberGenerator(200_000));
        var tgz = Path.Combine(_dir, "cut.tar.gz");
        using (var gz = new GZipStream(File.Create(tgz), CompressionLevel.NoCompression))
        {
            TarFile.CreateFromDirectory(folder, gz, includeBaseDirectory: false);
        }

        var bytes = File.ReadAllBytes(tgz);
        File.WriteAllBytes(tgz, bytes[..(bytes.Length / 2)]);

        var ex = Assert.Throws<InvalidDataException>(() => GtfsRtArchive.Read(tgz).ToList());
        Assert.StartsWith("cut.tar.gz: not a readable .tar.gz", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ArchiveWithoutSnapshots_IsAnErrorThatSaysSo()
    {
        var folder = Path.Combine(_dir, "none");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "notes.txt"), "no snapshots here");
        var tgz = Path.Combine(_dir, "none.tar.gz");
        using (var gz = new GZipStream(File.Create(tgz), CompressionLevel.Fastest))
        {
            TarFile.CreateFromDirectory(folder, gz, includeBaseDirectory: false);
        }

        var ex = Assert.Throws<InvalidDataException>(() => GtfsInspector.InspectRealtimeArchive(tgz, null));
        Assert.StartsWith("none.tar.gz: no GTFS-Realtime snapshots", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AucklandDay_EverySnapshotOfTheArchiveDecodes()
    {
        var archive = SharedData.RequireFile("gtfs-rt/auckland-tripupdates_2016-05-19/auckland-tripupdates_2016-05-19.tar.gz");

        var summary = GtfsInspector.InspectRealtimeArchive(archive, null);

        // PROVENANCE.md: 1,396 polls, 393,596 entities in all, TripUpdates only.
        Assert.Equal(1_396, summary.Files.Count);
        Assert.All(summary.Files, f => Assert.Null(f.Error));
        Assert.Equal(393_596, summary.Totals.TripUpdates);
        Assert.Equal(0, summary.Totals.VehiclePositions);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] RandomNumberGenerator(int n)
    {
        var bytes = new byte[n];
        new Random(1).NextBytes(bytes);
        return bytes;
    }
}
