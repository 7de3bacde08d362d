using Fleet.Predict.Offline;
using Google.Protobuf;
using TransitRealtime;

namespace Fleet.Predict.Tests.Offline;

/// <summary>A recorded day of TripUpdates read as a replay day: observed events are truth, polls are prediction points.</summary>
public sealed class TripUpdateDaysTests : IDisposable
{
    private readonly LineFeed _feed = new(trips: 4);
    private readonly string _dir = Directory.CreateTempSubdirectory("fleet-tu-").FullName;

    // T00 leaves S0 at 06:00 Helsinki (UTC+2) on Monday 2026-03-02.
    private static readonly long s_t0 = new DateTimeOffset(2026, 3, 2, 4, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds();

    public void Dispose()
    {
        _feed.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private static FeedEntity Update(string id, string trip, params TripUpdate.Types.StopTimeUpdate[] updates)
    {
        var tu = new TripUpdate { Trip = new TripDescriptor { TripId = trip }, Vehicle = new VehicleDescriptor { Id = "bus-" + trip } };
        tu.StopTimeUpdate.AddRange(updates);
        return new FeedEntity { Id = id, TripUpdate = tu };
    }

    private static TripUpdate.Types.StopTimeUpdate Arrival(uint sequence, long time, int delay) =>
        new() { StopSequence = sequence, Arrival = new TripUpdate.Types.StopTimeEvent { Time = time, Delay = delay } };

    private static TripUpdate.Types.StopTimeUpdate Departure(uint sequence, long time) =>
        new() { StopSequence = sequence, Departure = new TripUpdate.Types.StopTimeEvent { Time = time } };

    private void Snapshot(string name, long timestamp, params FeedEntity[] entities)
    {
        var feed = new FeedMessage { Header = new FeedHeader { GtfsRealtimeVersion = "2.0", Timestamp = (ulong)timestamp } };
        feed.Entity.AddRange(entities);
        File.WriteAllBytes(Path.Combine(_dir, name), feed.ToByteArray());
    }

    [Fact]
    public void Read_ObservedEventsAreTruth_PollsArePoints_UnknownTripsAndStopsCounted()
    {
        Snapshot("001.pb", s_t0 + 130, Update("a", "T00", Arrival(2, s_t0 + 125, 5)), Update("b", "NOPE", Arrival(2, s_t0 + 100, 0)));
        Snapshot("002.pb", s_t0 + 200, Update("a", "T00", Departure(2, s_t0 + 140), Arrival(99, s_t0 + 150, 0)));
        Snapshot("003.pb", s_t0 + 270, Update("a", "T00", Arrival(3, s_t0 + 300, 30)));

        var read = TripUpdateDays.Read(_feed.Schedule, _dir, new ReplayOptions(), PollWindow.All, null, TestContext.Current.CancellationToken);

        Assert.Equal(3, read.Snapshots);
        Assert.Equal(4, read.Entities);
        Assert.Equal(1, read.TripsMatched);
        Assert.Equal(1, read.TripsSkipped);
        Assert.Equal(1, read.Day.TripsSkipped);
        Assert.Equal(1, read.Rejections["stop_not_on_trip"]);
        Assert.Equal(1, read.Rejections["stop_time_update_without_observed_time"]); // 300 s is after its poll: a prediction
        Assert.Equal(3, read.Day.Replay.Samples);
        var trip = Assert.Single(read.Day.Actuals.Trips.Values);
        Assert.Equal(_feed.Schedule.TryGetTrip("T00", out var t) ? t : -1, trip.Key.TripIndex);
        Assert.Equal(LineFeed.Day, trip.Key.ServiceDate);
        Assert.Equal(s_t0 + 125, trip.Arrival[1]);
        Assert.Equal(s_t0 + 140, trip.Departure[1]);
        Assert.Equal(s_t0 + 130, trip.KnownAt![1]); // first reported by the poll at +130
        Assert.True(double.IsNaN(trip.Arrival[2]));
        Assert.Equal("bus-T00", trip.Vehicle);
    }

    [Fact]
    public void Read_LaterDay_AgainstTimetableInferredFromEarlierDay_TripsRunOnTheLaterDate()
    {
        // Day 1, Thursday 2016-05-19 NZST (UTC+12): trip A1 scheduled at s1 08:00 and s2 08:05 (time - delay).
        var auckland = TimeZoneInfo.FindSystemTimeZoneById("Pacific/Auckland");
        var day1 = new DateTimeOffset(2016, 5, 18, 20, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds();
        var day2 = day1 + 86_400;
        static FeedEntity At(uint sequence, string stop, long time, int delay) => new()
        {
            Id = "A1",
            TripUpdate = new TripUpdate
            {
                Trip = new TripDescriptor { TripId = "A1", RouteId = "R1" },
                StopTimeUpdate = { new TripUpdate.Types.StopTimeUpdate { StopSequence = sequence, StopId = stop, Arrival = new() { Time = time, Delay = delay } } },
            },
        };
        var earlier = Path.Combine(_dir, "day1");
        var later = Path.Combine(_dir, "day2");
        var timetable = Path.Combine(_dir, "timetable");
        Directory.CreateDirectory(earlier);
        Directory.CreateDirectory(later);
        void Write(string folder, string name, long timestamp, FeedEntity entity)
        {
            var feed = new FeedMessage { Header = new FeedHeader { GtfsRealtimeVersion = "2.0", Timestamp = (ulong)timestamp } };
            feed.Entity.Add(entity);
            File.WriteAllBytes(Path.Combine(folder, name), feed.ToByteArray());
        }

        Write(earlier, "1.pb", day1 + 70, At(1, "s1", day1 + 60, 60));
        Write(earlier, "2.pb", day1 + 400, At(2, "s2", day1 + 390, 90));
        // Day 2: the same trip, 2 and 4 minutes late.
        Write(later, "1.pb", day2 + 130, At(1, "s1", day2 + 120, 120));
        Write(later, "2.pb", day2 + 560, At(2, "s2", day2 + 540, 240));
        Fleet.Gtfs.Realtime.TimetableInference.Write(earlier, auckland, timetable, TestContext.Current.CancellationToken);
        var schedule = Fleet.Gtfs.GtfsLoader.Load(timetable);

        var read = TripUpdateDays.Read(schedule, later, new ReplayOptions(), PollWindow.All, null, TestContext.Current.CancellationToken);

        Assert.Equal(1, read.TripsMatched);
        var trip = Assert.Single(read.Day.Actuals.Trips.Values);
        Assert.Equal(new DateOnly(2016, 5, 20), trip.Key.ServiceDate);
        // Scheduled on day 2 = day 1's timetable on day 2: observed - delay.
        Assert.All(read.Observed, e => Assert.Equal(
            e.TimeUnix - e.DelaySeconds!.Value,
            (schedule.ToUtc(trip.Key.ServiceDate, schedule.GetStopTimes(trip.Key.TripIndex)[e.StopTimeIndex].Arrival) - DateTime.UnixEpoch).TotalSeconds));
    }

    [Fact]
    public void Read_Window_KeepsOnlyItsPolls()
    {
        Snapshot("001.pb", s_t0 + 130, Update("a", "T00", Arrival(2, s_t0 + 125, 5)));
        Snapshot("002.pb", s_t0 + 3600, Update("a", "T01", Arrival(2, s_t0 + 3590, 5)));

        Assert.True(PollWindow.TryParse("06:30-24:00", out var window));
        var read = TripUpdateDays.Read(_feed.Schedule, _dir, new ReplayOptions(), window, null, TestContext.Current.CancellationToken);

        Assert.Equal(1, read.Snapshots);
        Assert.Equal("T01", _feed.Schedule.Trips[Assert.Single(read.Day.Actuals.Trips.Keys).TripIndex].Id);
    }

    [Fact]
    public void Read_NoSnapshots_OrNoTripUpdates_ClearError()
    {
        var e = Assert.Throws<InvalidDataException>(() => TripUpdateDays.Read(_feed.Schedule, _dir, new ReplayOptions(), PollWindow.All, null, TestContext.Current.CancellationToken));
        Assert.Contains("no GTFS-Realtime snapshots", e.Message, StringComparison.Ordinal);

        Snapshot("001.pb", s_t0, new FeedEntity { Id = "v", Vehicle = new VehiclePosition { Vehicle = new VehicleDescriptor { Id = "1" } } });
        e = Assert.Throws<InvalidDataException>(() => TripUpdateDays.Read(_feed.Schedule, _dir, new ReplayOptions(), PollWindow.All, null, TestContext.Current.CancellationToken));
        Assert.Contains("no TripUpdates", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("04:00-14:00", true)]
    [InlineData("14:00-24:00", true)]
    [InlineData("14:00-04:00", false)]
    [InlineData("25:00-26:00", false)]
    [InlineData("4-14", false)]
    [InlineData("", false)]
    public void PollWindow_Parse(string text, bool valid) => Assert.Equal(valid, PollWindow.TryParse(text, out _));
}
