using System.Globalization;
using System.Text;
using Fleet.Gtfs;

namespace Fleet.Predict.Tests;

/// <summary>
/// A tiny GTFS feed in a temporary folder: one route (R) on a straight line of <see cref="Stops"/> stops 500 m
/// apart, one trip every 10 minutes from 06:00 (trip ids T00, T01, …), 120 s scheduled between stops and no
/// scheduled dwell; weekday service in 2026, Europe/Helsinki.
/// </summary>
internal sealed class LineFeed : IDisposable
{
    public const int Stops = 6;
    public const int SegmentSeconds = 120;
    public const int FirstStart = 6 * 3600;
    public const int Headway = 600;

    public LineFeed(int trips = 12)
    {
        Trips = trips;
        Folder = Path.Combine(Path.GetTempPath(), "fleet-predict-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Folder);
        var inv = CultureInfo.InvariantCulture;
        var stops = new StringBuilder("stop_id,stop_name,stop_lat,stop_lon\n");
        for (var s = 0; s < Stops; s++)
        {
            // 500 m of latitude is 0.0044966 degrees.
            stops.Append(inv, $"S{s},Stop {s},{60 + (s * 0.0044966):0.0000000},25.0\n");
        }

        var tripsText = new StringBuilder("route_id,service_id,trip_id,direction_id\n");
        var times = new StringBuilder("trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled\n");
        for (var t = 0; t < trips; t++)
        {
            tripsText.Append(inv, $"R,WK,{TripId(t)},0\n");
            for (var s = 0; s < Stops; s++)
            {
                var time = new ServiceTime(FirstStart + (t * Headway) + (s * SegmentSeconds));
                times.Append(inv, $"{TripId(t)},{time},{time},S{s},{s + 1},{s * 500}\n");
            }
        }

        File.WriteAllText(Path.Combine(Folder, "agency.txt"), "agency_id,agency_name,agency_url,agency_timezone\nA,Agency,http://a,Europe/Helsinki\n");
        File.WriteAllText(Path.Combine(Folder, "stops.txt"), stops.ToString());
        File.WriteAllText(Path.Combine(Folder, "routes.txt"), "route_id,agency_id,route_short_name,route_long_name,route_type\nR,A,1,One,3\n");
        File.WriteAllText(Path.Combine(Folder, "trips.txt"), tripsText.ToString());
        File.WriteAllText(Path.Combine(Folder, "stop_times.txt"), times.ToString());
        File.WriteAllText(Path.Combine(Folder, "calendar.txt"),
            "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\nWK,1,1,1,1,1,0,0,20260101,20261231\n");
        Schedule = GtfsLoader.Load(Folder);
    }

    /// <summary>A Monday.</summary>
    public static DateOnly Day => new(2026, 3, 2);

    public int Trips { get; }

    public string Folder { get; }

    public Schedule Schedule { get; }

    public static string TripId(int t) => "T" + t.ToString("D2", CultureInfo.InvariantCulture);

    public int TripIndex(int t) => Schedule.TryGetTrip(TripId(t), out var i) ? i : throw new InvalidOperationException(TripId(t));

    public int StopIndex(int s) => Schedule.TryGetStop("S" + s.ToString(CultureInfo.InvariantCulture), out var i) ? i : throw new InvalidOperationException();

    /// <summary>Unix seconds of a service time on <see cref="Day"/>.</summary>
    public double Unix(int serviceSeconds) => PredictionContext.ToUnix(Schedule.ToUtc(Day, new ServiceTime(serviceSeconds)));

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}
