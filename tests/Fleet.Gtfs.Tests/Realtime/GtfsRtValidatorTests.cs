using Fleet.Gtfs.Realtime;
using TransitRealtime;
using Xunit;
using Stu = TransitRealtime.TripUpdate.Types.StopTimeUpdate;
using Ste = TransitRealtime.TripUpdate.Types.StopTimeEvent;

namespace Fleet.Gtfs.Tests.Realtime;

public sealed class GtfsRtValidatorTests
{
    private const ulong Header = 1_767_585_600; // 2026-01-05T04:00:00Z

    private static FeedMessage Feed(params FeedEntity[] entities)
    {
        var feed = new FeedMessage { Header = new FeedHeader { GtfsRealtimeVersion = "2.0", Timestamp = Header } };
        feed.Entity.Add(entities);
        return feed;
    }

    private static FeedEntity Tu(string id, TripDescriptor trip, params Stu[] stops)
    {
        var tu = new TripUpdate { Trip = trip, Vehicle = new VehicleDescriptor { Id = "v" } };
        tu.StopTimeUpdate.Add(stops);
        return new FeedEntity { Id = id, TripUpdate = tu };
    }

    private static Stu At(uint seq, string stop, long time) => new() { StopSequence = seq, StopId = stop, Arrival = new Ste { Time = time } };

    [Fact]
    public void Validate_CleanTripUpdate_NoFindingsAndJoined()
    {
        using var temp = new TempFeed();
        var validator = new GtfsRtValidator(temp.Load());

        var r = validator.Validate(Feed(Tu("a", new TripDescriptor { TripId = "T1", StartDate = "20260105" }, At(1, "S1", 10), At(2, "S2", 20))));

        Assert.Empty(r.Findings);
        Assert.Equal((1, 1, 2, 2), (r.TripsMatched, r.TripsTotal, r.StopsMatched, r.StopsTotal));
    }

    [Fact]
    public void Validate_UnknownIdsAndOrder_ReportsMobilityDataCodes()
    {
        using var temp = new TempFeed();
        var validator = new GtfsRtValidator(temp.Load());

        var r = validator.Validate(Feed(
            Tu("a", new TripDescriptor { TripId = "NOPE", RouteId = "NOROUTE" }, At(1, "S1", 10)),
            Tu("b", new TripDescriptor { TripId = "T1" }, At(2, "S2", 20), At(1, "S1", 30), At(3, "XX", 5)),
            Tu("c", new TripDescriptor { TripId = "T1" })));

        var codes = r.CountsByCode;
        Assert.Equal(1, codes["E003"]);  // unknown trip
        Assert.Equal(1, codes["E004"]);  // unknown route
        Assert.Equal(1, codes["E002"]);  // 2 then 1
        Assert.Equal(1, codes["E011"]);  // stop XX
        Assert.Equal(1, codes["E045"]);  // sequence 3 is S3 in GTFS, not XX
        Assert.Equal(1, codes["E022"]);  // 30 then 5
        Assert.Equal(1, codes["E041"]);  // no stop_time_updates
        Assert.Equal(2, r.TripsMatched);
        Assert.Equal(3, r.TripsTotal);
    }

    [Fact]
    public void Validate_EntityNewerThanHeader_ReportsE012()
    {
        var validator = new GtfsRtValidator(null);
        var vp = new FeedEntity { Id = "v", Vehicle = new VehiclePosition { Timestamp = Header + 5, Vehicle = new VehicleDescriptor { Id = "1" } } };

        var r = validator.Validate(Feed(vp));

        Assert.Equal(["E012"], r.CountsByCode.Keys);
    }

    [Fact]
    public void Validate_StaleAndFutureHeader_ReportsW008AndE050()
    {
        var validator = new GtfsRtValidator(null);
        var header = DateTime.UnixEpoch.AddSeconds(Header);

        var fresh = validator.Validate(Feed(), header.AddSeconds(90));
        var stale = validator.Validate(Feed(), header.AddSeconds(91));
        var future = validator.Validate(Feed(), header.AddSeconds(-61));

        Assert.Empty(fresh.Findings);
        Assert.Equal(["W008"], stale.CountsByCode.Keys);
        Assert.Equal(["E050"], future.CountsByCode.Keys);
    }

    [Fact]
    public void Validate_HeaderGoesBack_ReportsE018()
    {
        var validator = new GtfsRtValidator(null);
        validator.Validate(Feed());
        var older = Feed();
        older.Header.Timestamp = Header - 30;

        var r = validator.Validate(older);

        Assert.Equal(["E018"], r.CountsByCode.Keys);
    }

    [Fact]
    public void Validate_VehicleFarFromShape_ReportsE029()
    {
        using var temp = new TempFeed();
        var validator = new GtfsRtValidator(temp.Load());
        FeedEntity Vp(string id, float lon) => new()
        {
            Id = id,
            Vehicle = new VehiclePosition
            {
                Vehicle = new VehicleDescriptor { Id = id },
                Trip = new TripDescriptor { TripId = "T1" },
                Position = new Position { Latitude = 60.004f, Longitude = lon },
            },
        };

        // 0.0036 degrees of longitude at 60°N is about 200 m; 0.0045 about 250 m.
        var r = validator.Validate(Feed(Vp("near", 25.0030f), Vp("far", 25.0045f)));

        Assert.Equal(1, r.CountsByCode["E029"]);
        Assert.Equal("far", r.Findings.Single(f => f.Code == "E029").EntityId);
    }

    [Fact]
    public void Validate_InvalidPositionAndAlert_ReportsE026E032()
    {
        var validator = new GtfsRtValidator(null);
        var vp = new FeedEntity { Id = "v", Vehicle = new VehiclePosition { Vehicle = new VehicleDescriptor { Id = "1" }, Position = new Position { Latitude = 91, Longitude = 0 } } };
        var alert = new FeedEntity { Id = "a", Alert = new Alert() };

        var r = validator.Validate(Feed(vp, alert));

        Assert.Equal(["E026", "E032"], r.CountsByCode.Keys);
    }
}
