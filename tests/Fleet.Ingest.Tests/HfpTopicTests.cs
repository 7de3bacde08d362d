using System.Text;
using Fleet.Ingest.Events;
using Fleet.Ingest.Hfp;

namespace Fleet.Ingest.Tests;

public sealed class HfpTopicTests
{
    private static (bool Ok, HfpTopic Topic, byte[] Bytes) Parse(string topic)
    {
        var bytes = Encoding.UTF8.GetBytes(topic);
        var ok = HfpTopic.TryParse(bytes, out var t);
        return (ok, t, bytes);
    }

    private static string Level(byte[] bytes, Range r) => Encoding.UTF8.GetString(bytes.AsSpan()[r]);

    [Fact]
    public void TryParse_FullV2Topic_ReadsEveryLevel()
    {
        var (ok, t, b) = Parse("/hfp/v2/journey/ongoing/tlr/bus/0018/01029/5520/2/Matinkylä (M)/18:48/4170215/0/60;24/28/75/72/3230");

        Assert.True(ok);
        Assert.Equal(2, t.Version);
        Assert.Equal(JourneyType.Journey, t.Journey);
        Assert.False(t.Upcoming);
        Assert.Equal(EventType.Tlr, t.EventType);
        Assert.Equal(TransportMode.Bus, t.Mode);
        Assert.Equal("0018/01029", Level(b, t.VehicleId));
        Assert.Equal("0018", Level(b, t.Operator));
        Assert.Equal("01029", Level(b, t.Vehicle));
        Assert.Equal("5520", Level(b, t.Route));
        Assert.Equal("2", Level(b, t.Direction));
        Assert.Equal("Matinkylä (M)", t.GetHeadsign(b));
        Assert.Equal("18:48", Level(b, t.StartTime));
        Assert.Equal("4170215", Level(b, t.NextStop));
        Assert.Equal("0", Level(b, t.GeohashLevel));
        Assert.Equal("60;24/28/75/72", Level(b, t.Geohash));
        Assert.Equal("3230", Level(b, t.Sid));
    }

    [Fact]
    public void TryParse_V1Topic_HasNoEventTypeLevelAndMeansVp()
    {
        var (ok, t, b) = Parse("/hfp/v1/journey/upcoming/tram/0040/00601/1057/1/Kontula Keinutie/07:28/1451125/4/60;25/20/19/99");

        Assert.True(ok);
        Assert.Equal(1, t.Version);
        Assert.True(t.Upcoming);
        Assert.Equal(EventType.Vp, t.EventType);
        Assert.Equal(TransportMode.Tram, t.Mode);
        Assert.Equal("0040/00601", Level(b, t.VehicleId));
        Assert.Equal("Kontula Keinutie", t.GetHeadsign(b));
        Assert.Equal("1451125", Level(b, t.NextStop));
        Assert.Equal("60;25/20/19/99", Level(b, t.Geohash));
        Assert.True(t.Sid.Start.Value == t.Sid.End.Value);
    }

    [Theory]
    [InlineData("/hfp/v2/deadrun/ongoing/vp/bus/0018/01047")]
    [InlineData("/hfp/v2/deadrun/ongoing/vp/bus/0018/01047/")]
    [InlineData("/hfp/v1/deadrun/ongoing/train/0090/06313")]
    [InlineData("/hfp/v2/journey/ongoing/vp/bus/0018/01047/5530/1")]
    public void TryParse_MissingTrailingLevels_AreEmpty(string topic)
    {
        var (ok, t, b) = Parse(topic);

        Assert.True(ok);
        Assert.Equal(topic.Contains("/0090/", StringComparison.Ordinal) ? "0090/06313" : "0018/01047", Level(b, t.VehicleId));
        Assert.Equal("", Level(b, t.Headsign));
        Assert.Equal("", Level(b, t.NextStop));
        Assert.Equal("", Level(b, t.Geohash));
        Assert.Equal("", Level(b, t.Sid));
    }

    [Fact]
    public void TryParse_V1EmptyGeohash_ReadsEmptyLevels()
    {
        var (ok, t, b) = Parse("/hfp/v1/journey/ongoing/train/0090/01073/3002P/1/Lentoasema/07:18/1333552/0////");

        Assert.True(ok);
        Assert.Equal("3002P", Level(b, t.Route));
        Assert.Equal("0", Level(b, t.GeohashLevel));
        Assert.Equal("///", Level(b, t.Geohash));
    }

    [Theory]
    [InlineData("")]
    [InlineData("/hfp/v3/journey/ongoing/vp/bus/0018/01029")]
    [InlineData("/gtfs-rt/vp")]
    [InlineData("/hfp/v2/cruise/ongoing/vp/bus/0018/01029")]
    [InlineData("/hfp/v2/journey/ongoing/vp/bus/0018")]
    [InlineData("/hfp/v2/journey/ongoing/vp/bus//01029")]
    [InlineData("/hfp/v2")]
    public void TryParse_NotAnHfpVehicleTopic_Fails(string topic) => Assert.False(Parse(topic).Ok);

    [Fact]
    public void TryParse_WithoutLeadingSlash_Works()
    {
        var (ok, t, b) = Parse("hfp/v2/journey/ongoing/vp/metro/0050/00123");
        Assert.True(ok);
        Assert.Equal(TransportMode.Metro, t.Mode);
        Assert.Equal("0050/00123", Level(b, t.VehicleId));
    }

    [Fact]
    public void TryParse_UnknownEventTypeLevel_ParsesAsUnknown()
    {
        var (ok, t, _) = Parse("/hfp/v2/journey/ongoing/apc-partial/bus/0018/01029");
        Assert.True(ok);
        Assert.Equal(EventType.Unknown, t.EventType);
    }
}
