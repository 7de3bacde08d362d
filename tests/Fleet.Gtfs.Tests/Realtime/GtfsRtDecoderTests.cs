using System.Text;
using Fleet.Gtfs.Realtime;
using Fleet.Testing;
using Google.Protobuf;
using TransitRealtime;
using Xunit;

namespace Fleet.Gtfs.Tests.Realtime;

public sealed class GtfsRtDecoderTests
{
    [Fact]
    public void Decode_RandomBytes_ThrowsFormatException()
    {
        byte[] garbage = [0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01, 0x02];

        var ex = Assert.Throws<GtfsRtFormatException>(() => GtfsRtDecoder.Decode(garbage));

        Assert.Contains("7 bytes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decode_ValidProtobufWithoutHeader_ThrowsFormatException()
    {
        // Field 5, varint 1: well-formed protobuf, but no FeedHeader.
        byte[] bytes = [0x28, 0x01];

        var ex = Assert.Throws<GtfsRtFormatException>(() => GtfsRtDecoder.Decode(bytes));

        Assert.Contains("gtfs_realtime_version", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decode_TruncatedRealFeed_ThrowsFormatException()
    {
        var bytes = File.ReadAllBytes(SharedData.RequireFile("gtfs-rt/caltrain_2023-11-07/trip-updates_1699405534.pb"));

        Assert.Throws<GtfsRtFormatException>(() => GtfsRtDecoder.Decode(bytes.AsSpan(0, bytes.Length / 2)));
    }

    [Fact]
    public void DecodeJson_SnakeCaseFieldsAndEnumNames_Decode()
    {
        const string json = """
            {"header":{"gtfs_realtime_version":"2.0","incrementality":"FULL_DATASET","timestamp":1683740698},
             "entity":[{"id":"e1","trip_update":{"trip":{"trip_id":"T","direction_id":1,"schedule_relationship":"SCHEDULED"},
               "stop_time_update":[{"stop_sequence":2,"stop_id":"S","arrival":{"delay":-80,"time":1683739510}}]}},
               {"id":"e2","vehicle":{"position":{"latitude":47.5,"longitude":-122.3},"current_status":"IN_TRANSIT_TO","someVendorField":1}}]}
            """;

        var feed = GtfsRtDecoder.DecodeJson(json);

        Assert.Equal(1683740698UL, feed.Header.Timestamp);
        var stu = feed.Entity[0].TripUpdate.StopTimeUpdate[0];
        Assert.Equal(-80, stu.Arrival.Delay);
        Assert.Equal(1683739510L, stu.Arrival.Time);
        Assert.Equal(1U, feed.Entity[0].TripUpdate.Trip.DirectionId);
        Assert.Equal(47.5f, feed.Entity[1].Vehicle.Position.Latitude);
    }

    [Theory]
    [InlineData("{\"header\":")]
    [InlineData("{\"entity\":[]}")]
    [InlineData("{\"header\":{\"gtfs_realtime_version\":\"2.0\",\"timestamp\":\"soon\"}}")]
    public void DecodeJson_Malformed_ThrowsFormatException(string json) =>
        Assert.Throws<GtfsRtFormatException>(() => GtfsRtDecoder.DecodeJson(json));

    [Fact]
    public void DecodeAny_DetectsJsonAndProtobuf()
    {
        var feed = new FeedMessage { Header = new FeedHeader { GtfsRealtimeVersion = "2.0", Timestamp = 5 } };

        var fromPb = GtfsRtDecoder.DecodeAny(feed.ToByteArray());
        var fromJson = GtfsRtDecoder.DecodeAny(Encoding.UTF8.GetBytes("  \n" + JsonFormatter.Default.Format(feed)));

        Assert.Equal(feed, fromPb);
        Assert.Equal(feed, fromJson);
    }

    [Fact]
    public void DecodeFile_CorruptFile_NamesTheFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"fleet-corrupt-{Guid.NewGuid():N}.pb");
        File.WriteAllBytes(path, [0x0A, 0xFF, 0x01]);
        try
        {
            var ex = Assert.Throws<GtfsRtFormatException>(() => GtfsRtDecoder.DecodeFile(path));

            Assert.StartsWith(path, ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Decode_EmptyHartFeed_HasHeaderAndZeroEntities()
    {
        // PROVENANCE.md: "header only and zero entities (15 bytes)".
        var feed = GtfsRtDecoder.DecodeFile(SharedData.RequireFile("gtfs-rt/edge-cases/hart-tampa_trip-updates_empty_1615106995.pb"));

        Assert.Empty(feed.Entity);
        Assert.Equal(1615106995UL, feed.Header.Timestamp);
    }
}
