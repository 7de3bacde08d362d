using System.Globalization;
using System.Text;
using Fleet.Gtfs;
using Fleet.Predict;
using Fleet.Tracking.Output;
using Fleet.Tracking.Replay;
using Google.Protobuf;
using TransitRealtime;

namespace Fleet.Tracking.Tests;

/// <summary>Tracking from TripUpdates alone: observed stop events become arrivals and departures, every poll predicts.</summary>
public sealed class TripUpdateArchiveReplayTests : IDisposable
{
    private const int Stops = 5;
    private readonly string _dir = Directory.CreateTempSubdirectory("fleet-tu-replay-").FullName;
    private readonly Fleet.Gtfs.Schedule _schedule;

    // 06:00 Helsinki (UTC+2) on Monday 2026-03-02.
    private static readonly long s_t0 = new DateTimeOffset(2026, 3, 2, 4, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds();

    public TripUpdateArchiveReplayTests()
    {
        var gtfs = Path.Combine(_dir, "gtfs");
        Directory.CreateDirectory(gtfs);
        var inv = CultureInfo.InvariantCulture;
        var stops = new StringBuilder("stop_id,stop_name,stop_lat,stop_lon\n");
        for (var s = 0; s < Stops; s++)
        {
            stops.Append(inv, $"S{s},Stop {s},{60 + (s * 0.0045):0.0000},25.0\n");
        }

        var times = new StringBuilder("trip_id,arrival_time,departure_time,stop_id,stop_sequence\n");
        foreach (var (trip, start) in new[] { ("T0", 6 * 3600), ("T1", (6 * 3600) + 600) })
        {
            for (var s = 0; s < Stops; s++)
            {
                var t = new ServiceTime(start + (s * 120));
                times.Append(inv, $"{trip},{t},{t},S{s},{s + 1}\n");
            }
        }

        File.WriteAllText(Path.Combine(gtfs, "agency.txt"), "agency_id,agency_name,agency_url,agency_timezone\nA,A,http://a,Europe/Helsinki\n");
        File.WriteAllText(Path.Combine(gtfs, "stops.txt"), stops.ToString());
        File.WriteAllText(Path.Combine(gtfs, "routes.txt"), "route_id,agency_id,route_short_name,route_long_name,route_type\nR,A,1,One,3\n");
        File.WriteAllText(Path.Combine(gtfs, "trips.txt"), "route_id,service_id,trip_id\nR,WK,T0\nR,WK,T1\n");
        File.WriteAllText(Path.Combine(gtfs, "stop_times.txt"), times.ToString());
        File.WriteAllText(Path.Combine(gtfs, "calendar.txt"), "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\nWK,1,1,1,1,1,0,0,20260101,20261231\n");
        _schedule = GtfsLoader.Load(gtfs);

        // Polls every 60 s for 20 minutes; each trip runs 30 s late, reports its latest stop (arrival, then departure 50 s later).
        var archive = Path.Combine(_dir, "archive");
        Directory.CreateDirectory(archive);
        for (var poll = 0; poll <= 20; poll++)
        {
            var now = s_t0 + (poll * 60);
            var feed = new FeedMessage { Header = new FeedHeader { GtfsRealtimeVersion = "2.0", Timestamp = (ulong)now } };
            foreach (var (trip, start) in new[] { ("T0", s_t0), ("T1", s_t0 + 600) })
            {
                var latest = -1;
                for (var s = 0; s < Stops; s++)
                {
                    if (start + 30 + (s * 120) <= now)
                    {
                        latest = s;
                    }
                }

                if (latest < 0)
                {
                    continue;
                }

                var arrival = start + 30 + (latest * 120);
                var departed = arrival + 50 <= now;
                var ev = new TripUpdate.Types.StopTimeEvent { Time = departed ? arrival + 50 : arrival, Delay = departed ? 80 : 30 };
                var stu = new TripUpdate.Types.StopTimeUpdate { StopSequence = (uint)(latest + 1), StopId = $"S{latest}" };
                if (departed)
                {
                    stu.Departure = ev;
                }
                else
                {
                    stu.Arrival = ev;
                }

                var tu = new TripUpdate { Trip = new TripDescriptor { TripId = trip }, Vehicle = new VehicleDescriptor { Id = "bus-" + trip } };
                tu.StopTimeUpdate.Add(stu);
                feed.Entity.Add(new FeedEntity { Id = trip, TripUpdate = tu });
            }

            File.WriteAllBytes(Path.Combine(archive, $"{poll:000}.pb"), feed.ToByteArray());
        }
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (ArchiveReplayFigures Figures, string Text) Replay()
    {
        var profile = ArrivalModel.BindProfile(new Fleet.Predict.Online.HistoricalProfile(), _schedule);
        var delay = new PredictorSet(profile).All.Single(p => p.Name == "delay");
        using var memory = new MemoryStream();
        ArchiveReplayFigures figures;
        using (var json = new JsonLinesOutput(memory, leaveOpen: true))
        {
            figures = TripUpdateArchiveReplay.Run(_schedule, Path.Combine(_dir, "archive"), delay, profile, json, TestContext.Current.CancellationToken);
            json.Flush();
        }

        return (figures, Encoding.UTF8.GetString(memory.ToArray()));
    }

    [Fact]
    public void Run_ObservedEventsAndPredictionsAtEveryPoll_ByteIdenticalTwice()
    {
        var (figures, text) = Replay();
        var (_, again) = Replay();

        Assert.Equal(text, again);
        Assert.Equal(2, figures.TripsMatched);
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // T0 reaches all five stops in 20 minutes: each seen arriving (the poll after arriving) or departing.
        Assert.Contains(lines, l => l.Contains("\"type\":\"arrival\"", StringComparison.Ordinal) && l.Contains("\"trip\":\"T0\"", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("\"type\":\"departure\"", StringComparison.Ordinal) && l.Contains("\"source\":\"stop-event\"", StringComparison.Ordinal));
        Assert.True(figures.Predictions > 20, $"{figures.Predictions} predictions");
        var times = lines.Select(l => DateTime.Parse(l[(l.IndexOf("\"time\":\"", StringComparison.Ordinal) + 8)..][..24], CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind)).ToList();
        Assert.Equal(times.Order().ToList(), times); // written in event-time order

        // At 06:05 T0 is at S2 (arrived 06:04:30, 30 s late; leaves 06:05:20): predictions for S3 and S4 only.
        var at0605 = lines.Where(l => l.Contains("\"type\":\"prediction\"", StringComparison.Ordinal) && l.Contains("\"time\":\"2026-03-02T04:05:00", StringComparison.Ordinal) && l.Contains("\"trip\":\"T0\"", StringComparison.Ordinal)).ToList();
        Assert.Equal(["S3", "S4"], at0605.Select(l => l[(l.IndexOf("\"stop\":\"", StringComparison.Ordinal) + 8)..].Split('"')[0]));
        Assert.All(at0605, l => Assert.Contains("\"delay\":30", l, StringComparison.Ordinal));
    }
}
