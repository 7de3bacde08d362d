using Fleet.Gtfs.Realtime;
using Fleet.Gtfs.Tests.Static;
using Fleet.Ingest.Events;
using Fleet.Testing;
using TransitRealtime;
using Xunit;

namespace Fleet.Gtfs.Tests.Realtime;

public sealed class GtfsRtNormalizerTests
{
    private static readonly DateTime Receive = new(2026, 1, 5, 4, 0, 0, DateTimeKind.Utc);

    [Fact]
    public void Normalize_VehiclePosition_BecomesVpEvent()
    {
        var feed = new FeedMessage { Header = new FeedHeader { GtfsRealtimeVersion = "2.0", Timestamp = 1_767_585_600 } };
        feed.Entity.Add(new FeedEntity
        {
            Id = "e",
            Vehicle = new VehiclePosition
            {
                Vehicle = new VehicleDescriptor { Id = "bus-7" },
                Position = new Position { Latitude = 60.001f, Longitude = 25f, Speed = 8.5f, Bearing = 12f },
                Timestamp = 1_767_585_590,
                Trip = new TripDescriptor { TripId = "T1", StartDate = "20260105" },
                CurrentStopSequence = 2,
                OccupancyPercentage = 40,
            },
        });
        using var temp = new TempFeed();
        var matcher = new TripMatcher(temp.Load());
        var events = new List<VehicleEvent>();

        var n = GtfsRtNormalizer.Normalize(feed, Receive, matcher, events);

        Assert.Equal(1, n);
        var e = events[0];
        Assert.Equal((EventSource.GtfsRt, EventType.Vp), (e.Source, e.Type));
        Assert.Equal("bus-7", e.VehicleId);
        Assert.Equal(DateTime.UnixEpoch.AddSeconds(1_767_585_590), e.EventTime);
        Assert.Equal(Receive, e.ReceiveTime);
        Assert.Equal(8.5f, e.Speed);
        Assert.Equal(12f, e.Heading);
        Assert.Equal(40, e.Occupancy);
        Assert.Equal(("T1", "R", (sbyte)0), (e.TripId, e.RouteId, e.DirectionId));
        Assert.Equal(5 * 3600, e.StartTimeSeconds);
        Assert.Equal("S2", e.StopId);
        Assert.Equal(TransportMode.Bus, e.Mode);
    }

    [Fact]
    public void Normalize_TripUpdateByRouteAndStart_OneEventPerStopWithScheduleAndDelay()
    {
        var feed = new FeedMessage { Header = new FeedHeader { GtfsRealtimeVersion = "2.0", Timestamp = 1_767_585_600 } };
        var tu = new TripUpdate { Trip = new TripDescriptor { RouteId = "R", DirectionId = 1, StartDate = "20260105", StartTime = "25:00:00" } };
        // T2 leaves S3 at 25:00 Helsinki (23:00Z) and reaches S1 at 25:10 (23:10Z).
        var t2300 = (long)(new DateTime(2026, 1, 5, 23, 0, 0, DateTimeKind.Utc) - DateTime.UnixEpoch).TotalSeconds;
        tu.StopTimeUpdate.Add(new TripUpdate.Types.StopTimeUpdate { StopSequence = 1, Departure = new TripUpdate.Types.StopTimeEvent { Time = t2300 + 30 } });
        tu.StopTimeUpdate.Add(new TripUpdate.Types.StopTimeUpdate { StopId = "S1", Arrival = new TripUpdate.Types.StopTimeEvent { Delay = 90 } });
        feed.Entity.Add(new FeedEntity { Id = "tu", TripUpdate = tu });
        using var temp = new TempFeed();
        var events = new List<VehicleEvent>();

        GtfsRtNormalizer.Normalize(feed, Receive, new TripMatcher(temp.Load()), events);

        Assert.Equal(2, events.Count);
        Assert.All(events, e => Assert.Equal((EventType.TripUpdateStop, "T2"), (e.Type, e.TripId)));
        Assert.Equal("S3", events[0].StopId);
        Assert.Equal(30, events[0].DelaySeconds);
        Assert.Equal(DateTime.UnixEpoch.AddSeconds(t2300), events[0].ScheduledDeparture);
        Assert.Equal(2, events[1].StopSequence);
        Assert.Equal(90, events[1].DelaySeconds);
        Assert.Equal(DateTime.UnixEpoch.AddSeconds(t2300 + 600 + 90), events[1].PredictedArrival);
    }

    [Fact]
    public void Normalize_WithoutSchedule_UsesFeedOnly()
    {
        var feed = new FeedMessage { Header = new FeedHeader { GtfsRealtimeVersion = "2.0", Timestamp = 100 } };
        var tu = new TripUpdate { Trip = new TripDescriptor { TripId = "X" } };
        tu.StopTimeUpdate.Add(new TripUpdate.Types.StopTimeUpdate { StopId = "A", Arrival = new TripUpdate.Types.StopTimeEvent { Time = 200, Delay = 5 } });
        tu.StopTimeUpdate.Add(new TripUpdate.Types.StopTimeUpdate { StopId = "B", ScheduleRelationship = TripUpdate.Types.StopTimeUpdate.Types.ScheduleRelationship.Skipped });
        feed.Entity.Add(new FeedEntity { Id = "tu", TripUpdate = tu });
        feed.Entity.Add(new FeedEntity { Id = "gone", IsDeleted = true, TripUpdate = tu });
        var events = new List<VehicleEvent>();

        GtfsRtNormalizer.Normalize(feed, Receive, null, events);

        Assert.Equal(2, events.Count);
        Assert.Equal("tu", events[0].VehicleId);
        Assert.Equal(DateTime.UnixEpoch.AddSeconds(200), events[0].PredictedArrival);
        Assert.Equal(5, events[0].DelaySeconds);
        Assert.Null(events[0].ScheduledArrival);
        Assert.Null(events[1].PredictedArrival);
        Assert.Null(events[1].DelaySeconds);
    }

    [Fact]
    public void Normalize_CaltrainTripUpdates_EveryStopJoinsWithDelay()
    {
        // protoc --decode=transit_realtime.FeedMessage gtfs-realtime.proto < FILE | grep -c 'stop_time_update {' gives 220.
        var schedule = StaticConformanceTests.Loaded(SharedData.RequireFile("gtfs-static/caltrain_2023-09-23_2024-06-01.zip"));
        var feed = GtfsRtDecoder.DecodeFile(SharedData.RequireFile("gtfs-rt/caltrain_2023-11-07/trip-updates_1699405534.pb"));
        var events = new List<VehicleEvent>();

        GtfsRtNormalizer.Normalize(feed, DateTime.UnixEpoch.AddSeconds(1699405540), new TripMatcher(schedule), events);

        Assert.Equal(220, events.Count);
        Assert.All(events, e => Assert.NotNull(e.ScheduledArrival));
        // Trip 124, stop_sequence 21 (70242): predicted 1699405801 (01:10:01Z); stop_times.txt says 17:09:00 PST = 01:09:00Z.
        var e = events.Single(x => x.TripId == "124" && x.StopSequence == 21);
        Assert.Equal("70242", e.StopId);
        Assert.Equal(new DateTime(2023, 11, 8, 1, 9, 0, DateTimeKind.Utc), e.ScheduledArrival);
        Assert.Equal(DateTime.UnixEpoch.AddSeconds(1699405801), e.PredictedArrival);
        Assert.Equal(61, e.DelaySeconds);
        Assert.Equal(TransportMode.Train, e.Mode);
    }
}
