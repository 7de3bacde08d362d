using System.Text;
using Fleet.Ingest.Events;
using Fleet.Ingest.Hfp;

namespace Fleet.Ingest.Tests;

public sealed class HfpParserTests
{
    // A real DUE message (hfp-v2_2023-10-29_bus-0012-01913_route4400.txt, line 1).
    private const string DueTopic = "/hfp/v2/journey/ongoing/due/bus/0012/01913/4400/1/Vantaankoski/15:21/1130110/4/60;24/19/72/15";
    private const string DuePayload = """{"DUE":{"desi":"400","dir":"1","oper":12,"veh":1913,"tst":"2023-10-29T13:24:10.211Z","tsi":1698585850,"spd":4.00,"hdg":274,"lat":60.171325,"long":24.925031,"acc":-1.70,"dl":-112,"odo":741,"drst":0,"oday":"2023-10-29","jrn":663,"line":1109,"start":"15:21","loc":"GPS","stop":1130110,"route":"4400","occu":0,"ttarr":"2023-10-29T13:24:00.000Z","ttdep":"2023-10-29T13:24:00.000Z"}}""";
    private const string VpTopic = "/hfp/v2/journey/ongoing/vp/bus/0018/00679/1064/1/Itä-Pakila/21:12/1353117/0/60;24/29/45/98";
    private static readonly DateTime s_received = new(2023, 10, 29, 13, 24, 10, 275, DateTimeKind.Utc);

    private static string Vp(string fields) => "{\"VP\":{" + fields + "}}";

    private const string VpFields = "\"tst\":\"2023-10-29T19:46:40.344Z\",\"lat\":60.249085,\"long\":24.958315";

    private static (bool Ok, VehicleEvent Event, RejectReason Reason, HfpParser Parser) Parse(string topic, string payload, HfpParser? parser = null)
    {
        parser ??= new HfpParser();
        var ok = parser.TryParse(Encoding.UTF8.GetBytes(topic), Encoding.UTF8.GetBytes(payload), s_received, out var ev, out var reason);
        return (ok, ev, reason, parser);
    }

    [Fact]
    public void TryParse_RealDueMessage_NormalizesEveryField()
    {
        var (ok, e, reason, _) = Parse(DueTopic, DuePayload);

        Assert.True(ok, reason.ToString());
        Assert.Equal(EventSource.Hfp, e.Source);
        Assert.Equal(EventType.Due, e.Type);
        Assert.Equal(JourneyType.Journey, e.Journey);
        Assert.Equal(TransportMode.Bus, e.Mode);
        Assert.Equal("0012/01913", e.VehicleId);
        Assert.Equal(new DateTime(2023, 10, 29, 13, 24, 10, 211, DateTimeKind.Utc), e.EventTime);
        Assert.Equal(DateTimeKind.Utc, e.EventTime.Kind);
        Assert.Equal(s_received, e.ReceiveTime);
        Assert.Equal(60.171325, e.Latitude);
        Assert.Equal(24.925031, e.Longitude);
        Assert.Equal(4.0f, e.Speed);
        Assert.Equal(274f, e.Heading);
        Assert.Equal(-1.7f, e.Acceleration);
        Assert.Equal(741, e.Odometer);
        Assert.Equal(0, e.Doors);
        Assert.Equal(112, e.DelaySeconds); // dl -112 means 112 s late
        Assert.Equal(new DateOnly(2023, 10, 29), e.OperatingDay);
        Assert.Equal((15 * 3600) + (21 * 60), e.StartTimeSeconds);
        Assert.Equal("4400", e.RouteId);
        Assert.Equal(0, e.DirectionId); // HFP 1 -> GTFS 0
        Assert.Equal("1130110", e.StopId);
        Assert.Equal(new DateTime(2023, 10, 29, 13, 24, 0, DateTimeKind.Utc), e.ScheduledArrival);
        Assert.Equal(new DateTime(2023, 10, 29, 13, 24, 0, DateTimeKind.Utc), e.ScheduledDeparture);
        Assert.Equal(0, e.Occupancy);
        Assert.Equal(LocationSource.Gps, e.Location);
        Assert.Equal(663, e.JourneyNumber);
        Assert.False(e.Upcoming);
    }

    [Fact]
    public void TryParse_EarlyVehicle_HasNegativeDelay()
    {
        var (ok, e, _, _) = Parse(VpTopic, Vp(VpFields + ",\"dl\":59,\"dir\":\"2\""));
        Assert.True(ok);
        Assert.Equal(-59, e.DelaySeconds);
        Assert.Equal(1, e.DirectionId);
    }

    [Fact]
    public void TryParse_NullFields_AreAbsent()
    {
        var (ok, e, _, _) = Parse("/hfp/v2/deadrun/ongoing/vp/bus/0018/01047",
            """{"VP":{"desi":null,"dir":null,"oper":null,"veh":1047,"tst":"2023-10-30T03:34:48.779Z","tsi":1698636888,"spd":null,"hdg":null,"lat":null,"long":null,"acc":null,"dl":null,"odo":null,"drst":null,"oday":null,"jrn":null,"line":null,"start":null,"loc":"N/A","stop":null,"route":null,"occu":null}}""");

        Assert.True(ok);
        Assert.Equal(JourneyType.Deadrun, e.Journey);
        Assert.False(e.HasPosition);
        Assert.True(float.IsNaN(e.Speed));
        Assert.True(float.IsNaN(e.Heading));
        Assert.True(double.IsNaN(e.Odometer));
        Assert.Null(e.DelaySeconds);
        Assert.Null(e.OperatingDay);
        Assert.Null(e.RouteId);
        Assert.Null(e.StopId);
        Assert.Equal(-1, e.DirectionId);
        Assert.Equal(-1, e.Doors);
        Assert.Equal(-1, e.StartTimeSeconds);
        Assert.Equal(-1, e.Occupancy);
        Assert.Equal(LocationSource.NotAvailable, e.Location);
    }

    [Fact]
    public void TryParse_NullCoordinates_ParsedWithoutPositionAndCounted()
    {
        var (ok, e, _, parser) = Parse(VpTopic, Vp("\"tst\":\"2023-10-29T19:46:40Z\",\"lat\":null,\"long\":null"));
        Assert.True(ok);
        Assert.False(e.HasPosition);
        Assert.Equal(1, parser.ParsedWithoutPosition);
    }

    [Fact]
    public void TryParse_VpWithoutPayloadRoute_TakesRouteDirectionStopAndStartFromTopic()
    {
        var (ok, e, _, _) = Parse(VpTopic, Vp(VpFields));
        Assert.True(ok);
        Assert.Equal("1064", e.RouteId);
        Assert.Equal(0, e.DirectionId);
        Assert.Equal("1353117", e.StopId);
        Assert.Equal((21 * 3600) + (12 * 60), e.StartTimeSeconds);
    }

    [Fact]
    public void TryParse_JourneyStartingAfterMidnight_StartTimeGoesPast24Hours()
    {
        // Operating day 2023-10-29, start 00:15 (HFP's 24-hour clock), event at 22:20Z = 00:20 local on the 30th.
        var (ok, e, _, _) = Parse(VpTopic, Vp("\"tst\":\"2023-10-29T22:20:00Z\",\"lat\":60.1,\"long\":24.9,\"oday\":\"2023-10-29\",\"start\":\"00:15\""));
        Assert.True(ok);
        Assert.Equal((24 * 3600) + (15 * 60), e.StartTimeSeconds);
    }

    [Fact]
    public void TryParse_UpcomingTemporalType_IsFlagged()
    {
        var (ok, e, _, _) = Parse(VpTopic.Replace("ongoing", "upcoming", StringComparison.Ordinal), Vp(VpFields));
        Assert.True(ok);
        Assert.True(e.Upcoming);
    }

    [Fact]
    public void TryParse_NumbersAsStringsAndUnknownFields_AreAccepted()
    {
        var (ok, e, _, _) = Parse(VpTopic, Vp(VpFields + ",\"spd\":\"5.5\",\"odo\":\"100\",\"stop\":\"H0123\",\"extra\":{\"a\":[1,2,{\"b\":null}]},\"label\":\"x\""));
        Assert.True(ok);
        Assert.Equal(5.5f, e.Speed);
        Assert.Equal(100, e.Odometer);
        Assert.Equal("H0123", e.StopId);
    }

    [Fact]
    public void TryParse_SecondsOnlyTimestamp_FallsBackToTsi()
    {
        var (ok, e, _, _) = Parse(VpTopic, Vp("\"tst\":null,\"tsi\":1698608800,\"lat\":60.2,\"long\":24.9"));
        Assert.True(ok);
        Assert.Equal(DateTime.UnixEpoch.AddSeconds(1698608800), e.EventTime);
    }

    [Fact]
    public void TryParse_RepeatedIds_ReturnTheSameStringInstances()
    {
        var parser = new HfpParser();
        var a = Parse(DueTopic, DuePayload, parser).Event;
        var b = Parse(DueTopic, DuePayload, parser).Event;
        Assert.Same(a.VehicleId, b.VehicleId);
        Assert.Same(a.RouteId, b.RouteId);
        Assert.Same(a.StopId, b.StopId);
        Assert.Equal(3, parser.Ids.Count);
    }

    public static TheoryData<string, string, RejectReason> Rejections => new()
    {
        { "/foo/bar", DuePayload, RejectReason.BadTopic },
        { DueTopic, "not json", RejectReason.BadJson },
        { DueTopic, "[1,2]", RejectReason.BadJson },
        { DueTopic, "{\"DUE\":5}", RejectReason.BadJson },
        { DueTopic, DuePayload + "x", RejectReason.BadJson },
        { DueTopic, DuePayload[..^1] + ",\"x\":1}", RejectReason.BadJson },
        { DueTopic, DuePayload[..120], RejectReason.TruncatedLine },
        { DueTopic, "", RejectReason.TruncatedLine },
        { DueTopic, "{\"APC\":{\"tst\":\"2024-02-13T16:35:00Z\"}}", RejectReason.UnknownEventType },
        { VpTopic, DuePayload, RejectReason.EventTypeMismatch },
        { VpTopic, Vp("\"lat\":60.1,\"long\":24.9"), RejectReason.MissingTimestamp },
        { VpTopic, Vp("\"tst\":\"2023-10-29T19:46:40Z\""), RejectReason.MissingCoordinates },
        { VpTopic, Vp("\"tst\":\"2023-10-29T19:46:40Z\",\"lat\":60.1"), RejectReason.MissingCoordinates },
        { VpTopic, Vp("\"tst\":\"2023-10-29T19:46:40Z\",\"lat\":60.1,\"long\":null"), RejectReason.MissingCoordinates },
        { VpTopic, Vp("\"tst\":\"2023-10-29T19:46:40Z\",\"lat\":95.1,\"long\":24.9"), RejectReason.CoordinatesOutOfRange },
        { VpTopic, Vp("\"tst\":\"2023-10-29T19:46:40Z\",\"lat\":60.1,\"long\":-181"), RejectReason.CoordinatesOutOfRange },
        { VpTopic, Vp("\"tst\":\"yesterday\",\"lat\":60.1,\"long\":24.9"), RejectReason.BadFieldValue },
        { VpTopic, Vp(VpFields + ",\"spd\":true"), RejectReason.BadFieldValue },
        { VpTopic, Vp(VpFields + ",\"dir\":\"3\""), RejectReason.BadFieldValue },
        { VpTopic, Vp(VpFields + ",\"occu\":101"), RejectReason.BadFieldValue },
        { VpTopic, Vp(VpFields + ",\"oday\":\"2023-13-01\""), RejectReason.BadFieldValue },
        { VpTopic, Vp(VpFields + ",\"start\":\"25:99\""), RejectReason.BadFieldValue },
        { VpTopic, Vp(VpFields + ",\"lat\":\"north\""), RejectReason.BadFieldValue },
    };

    [Theory]
    [MemberData(nameof(Rejections))]
    public void TryParse_MalformedInput_RejectedWithNamedReasonAndCounted(string topic, string payload, RejectReason expected)
    {
        var (ok, _, reason, parser) = Parse(topic, payload);

        Assert.False(ok);
        Assert.Equal(expected, reason);
        Assert.Equal(1, parser.Rejections[expected]);
        Assert.Equal(1, parser.Rejections.Total);
        Assert.Equal(0, parser.Parsed);
    }

    [Fact]
    public void TryParse_OversizedPayload_RejectedBeforeParsing()
    {
        var parser = new HfpParser(options: new HfpParserOptions { MaxPayloadBytes = 100 });
        var (ok, _, reason, _) = Parse(DueTopic, DuePayload, parser);
        Assert.False(ok);
        Assert.Equal(RejectReason.Oversized, reason);
    }

    [Fact]
    public void TryParse_AfterRejections_KeepsParsing()
    {
        var parser = new HfpParser();
        for (var i = 0; i < 100; i++)
        {
            Assert.False(Parse(DueTopic, "{{{", parser).Ok);
        }

        Assert.True(Parse(DueTopic, DuePayload, parser).Ok);
        Assert.Equal(100, parser.Rejections[RejectReason.BadJson]);
        Assert.Equal(1, parser.Parsed);
    }

    [Theory]
    [InlineData("VP", EventType.Vp)]
    [InlineData("DUE", EventType.Due)]
    [InlineData("ARR", EventType.Arr)]
    [InlineData("ARS", EventType.Ars)]
    [InlineData("DEP", EventType.Dep)]
    [InlineData("PDE", EventType.Pde)]
    [InlineData("PAS", EventType.Pas)]
    [InlineData("WAIT", EventType.Wait)]
    [InlineData("DOO", EventType.Doo)]
    [InlineData("DOC", EventType.Doc)]
    [InlineData("TLR", EventType.Tlr)]
    [InlineData("TLA", EventType.Tla)]
    [InlineData("DA", EventType.Da)]
    [InlineData("DOUT", EventType.Dout)]
    [InlineData("BA", EventType.Ba)]
    [InlineData("BOUT", EventType.Bout)]
    [InlineData("VJA", EventType.Vja)]
    [InlineData("VJOUT", EventType.Vjout)]
    public void TryParse_EveryEventType_MapsTopicAndPayload(string name, EventType expected)
    {
        var topic = $"/hfp/v2/journey/ongoing/{name.ToLowerInvariant()}/bus/0018/00679/1064/1/Itä-Pakila/21:12/1353117/0/60;24/29/45/98";
        var payload = "{\"" + name + "\":{\"tst\":\"2023-10-29T19:46:40.344Z\",\"lat\":null,\"long\":null,\"stop\":1353117}}";

        var (ok, e, reason, _) = Parse(topic, payload);

        Assert.True(ok, reason.ToString());
        Assert.Equal(expected, e.Type);
        Assert.Equal(name, HfpEventTypes.Name(e.Type));
    }

    [Fact]
    public void TryParsePayload_NoTopic_BuildsPaddedVehicleIdFromOperAndVeh()
    {
        var parser = new HfpParser();
        var ok = parser.TryParsePayload(Encoding.UTF8.GetBytes(Vp(VpFields + ",\"oper\":40,\"veh\":601")), default, out var e, out _);
        Assert.True(ok);
        Assert.Equal("0040/00601", e.VehicleId);
    }
}
