using Fleet.Gtfs.Realtime;
using Google.Protobuf;
using TransitRealtime;

namespace Fleet.Gtfs.Tests.Realtime;

/// <summary>A timetable inferred from TripUpdates: scheduled = time - delay, stops in stop_sequence order.</summary>
public sealed class TimetableInferenceTests : IDisposable
{
    private readonly string _archive = Directory.CreateTempSubdirectory("fleet-tt-archive-").FullName;
    private readonly string _out = Path.Combine(Path.GetTempPath(), "fleet-tt-out-" + Guid.NewGuid().ToString("N"));
    private static readonly TimeZoneInfo s_auckland = TimeZoneInfo.FindSystemTimeZoneById("Pacific/Auckland");

    // 2016-05-19 08:00 NZST (UTC+12).
    private static readonly long s_t0 = new DateTimeOffset(2016, 5, 18, 20, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds();

    public void Dispose()
    {
        Directory.Delete(_archive, recursive: true);
        if (Directory.Exists(_out))
        {
            Directory.Delete(_out, recursive: true);
        }
    }

    private static FeedEntity Update(string trip, uint sequence, string stop, bool arrival, long time, int? delay)
    {
        var ev = new TripUpdate.Types.StopTimeEvent { Time = time };
        if (delay is { } d)
        {
            ev.Delay = d;
        }

        var stu = new TripUpdate.Types.StopTimeUpdate { StopSequence = sequence, StopId = stop };
        if (arrival)
        {
            stu.Arrival = ev;
        }
        else
        {
            stu.Departure = ev;
        }

        var tu = new TripUpdate { Trip = new TripDescriptor { TripId = trip, RouteId = "R" + trip[..1] } };
        tu.StopTimeUpdate.Add(stu);
        return new FeedEntity { Id = trip, TripUpdate = tu };
    }

    private void Snapshot(string name, params FeedEntity[] entities)
    {
        var feed = new FeedMessage { Header = new FeedHeader { GtfsRealtimeVersion = "2.0", Timestamp = (ulong)s_t0 } };
        feed.Entity.AddRange(entities);
        File.WriteAllBytes(Path.Combine(_archive, name), feed.ToByteArray());
    }

    [Fact]
    public void Write_ScheduledTimesFromTimeMinusDelay_LoadsAsGtfs()
    {
        Snapshot("1.pb", Update("A1", 1, "s1", arrival: false, s_t0 + 60, 60), Update("B1", 1, "s9", arrival: false, s_t0, 0));
        Snapshot("2.pb", Update("A1", 2, "s2", arrival: true, s_t0 + 400, 100), Update("A1", 5, "s5", arrival: true, s_t0 + 500, null));
        // A later report of stop 3 with a delay that would put it before stop 2: raised to stop 2's time.
        Snapshot("3.pb", Update("A1", 3, "s3", arrival: true, s_t0 + 350, 90));

        var inferred = TimetableInference.Write(_archive, s_auckland, _out, TestContext.Current.CancellationToken);

        Assert.Equal(1, inferred.Trips); // B1 has one stop
        Assert.Equal(1, inferred.Rejections["trip_with_fewer_than_two_stops"]);
        Assert.Equal(1, inferred.Rejections["stop_time_update_without_time_and_delay"]);
        Assert.Equal([new DateOnly(2016, 5, 19)], inferred.ServiceDates);
        var schedule = GtfsLoader.Load(_out);
        Assert.True(schedule.TryGetTrip("A1", out var trip));
        var times = schedule.GetStopTimes(trip).ToArray();
        Assert.Equal([1, 2, 3], times.Select(t => t.Sequence));
        Assert.Equal(["s1", "s2", "s3"], times.Select(t => schedule.Stops[t.StopIndex].Id));
        Assert.Equal(8 * 3600, times[0].Departure.TotalSeconds); // 08:01 - 60 s
        Assert.Equal((8 * 3600) + 300, times[1].Arrival.TotalSeconds); // 08:06:40 - 100 s
        Assert.Equal((8 * 3600) + 300, times[2].Arrival.TotalSeconds); // 08:05:50 - 90 s = 08:04:20, raised to 08:05
        Assert.Equal(TimeZoneInfo.FindSystemTimeZoneById("Pacific/Auckland").Id, schedule.TimeZone.Id);
        // The archive's day and any other: a later day's feed names the trips that run on it.
        var service = schedule.Trips[trip].ServiceIndex;
        Assert.True(schedule.IsServiceActive(service, new DateOnly(2016, 5, 19)));
        Assert.True(schedule.IsServiceActive(service, new DateOnly(2016, 5, 20)));
        Assert.True(schedule.IsServiceActive(service, new DateOnly(2016, 5, 14)));
        Assert.False(schedule.IsServiceActive(service, new DateOnly(2016, 5, 19).AddDays(TimetableInference.ValidDays + 1)));
    }

    [Fact]
    public void Write_NothingToInfer_ClearError()
    {
        Snapshot("1.pb", Update("B1", 1, "s9", arrival: false, s_t0, 0));

        var e = Assert.Throws<InvalidDataException>(() => TimetableInference.Write(_archive, s_auckland, _out, TestContext.Current.CancellationToken));
        Assert.Contains("no timetable can be inferred", e.Message, StringComparison.Ordinal);
    }
}
