using System.Globalization;
using System.Text;
using TransitRealtime;

namespace Fleet.Gtfs.Realtime;

/// <summary>What <see cref="TimetableInference.Write"/> inferred.</summary>
/// <param name="Folder">The GTFS folder written.</param>
/// <param name="Trips">Trips with at least two stops.</param>
/// <param name="Stops">Distinct stops.</param>
/// <param name="StopTimes">Stop times written.</param>
/// <param name="Routes">Routes.</param>
/// <param name="ServiceDates">The service dates the archive's trips ran on (the timetable runs on every day of a year
/// either side of them).</param>
/// <param name="Rejections">Stop updates or trips not used, by reason.</param>
public sealed record InferredTimetable(
    string Folder, int Trips, int Stops, int StopTimes, int Routes, IReadOnlyList<DateOnly> ServiceDates, IReadOnlyDictionary<string, long> Rejections);

/// <summary>
/// Infers a static timetable from a recorded day of TripUpdates, for networks whose GTFS is not at hand: every
/// stop_time_update with an observed time and a delay gives its stop's scheduled time (<c>time - delay</c>), the
/// order of stops is <c>stop_sequence</c>. Writes a minimal GTFS folder (agency, stops, routes, trips, stop_times,
/// calendar) that <see cref="GtfsLoader"/> reads.
/// </summary>
/// <remarks>
/// <para>What the feed does not carry stays out: stops have no coordinates (0, 0) and no names but their ids, trips
/// no direction or shape, a trip has only the stops some update named (a vehicle reported there, on that day). A
/// trip's service date is the local date of its first scheduled time. Scheduled times never go backwards along a
/// trip (a later stop's time is raised to the earlier one's). The inferred times are the agency's schedule, not the
/// observed times, so predicting against them does not peek at the answer. Every trip runs every day of a year either
/// side of the archive (<see cref="ServiceId"/>): a feed of another day names the trips that run that day, so a timetable
/// inferred from one day scores the next.</para>
/// </remarks>
public static class TimetableInference
{
    private sealed class TripTable
    {
        public required string RouteId { get; init; }

        public SortedDictionary<uint, (string StopId, double Arrival, double Departure)> Stops { get; } = [];
    }

    /// <summary>Reads the archive and writes the inferred GTFS into <paramref name="folder"/> (created).</summary>
    /// <param name="archive">A folder, .zip or .tar.gz of TripUpdates snapshots.</param>
    /// <param name="timeZone">The agency's time zone (service days are local).</param>
    /// <param name="folder">Where to write the GTFS text files.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <exception cref="InvalidDataException">A corrupt archive, or one from which no trip with two stops follows.</exception>
    public static InferredTimetable Write(string archive, TimeZoneInfo timeZone, string folder, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(archive);
        ArgumentNullException.ThrowIfNull(timeZone);
        ArgumentNullException.ThrowIfNull(folder);
        var trips = new Dictionary<string, TripTable>(StringComparer.Ordinal);
        var rejections = new SortedDictionary<string, long>(StringComparer.Ordinal);
        void Reject(string reason) => rejections[reason] = rejections.GetValueOrDefault(reason) + 1;
        var snapshots = 0;
        foreach (var entry in GtfsRtArchive.Read(archive))
        {
            cancellationToken.ThrowIfCancellationRequested();
            snapshots++;
            FeedMessage feed;
            try
            {
                feed = GtfsRtDecoder.DecodeAny(entry.Bytes);
            }
            catch (GtfsRtFormatException)
            {
                Reject("snapshot_undecodable");
                continue;
            }

            foreach (var entity in feed.Entity)
            {
                if (entity.TripUpdate is not { Trip.TripId.Length: > 0 } tu)
                {
                    continue;
                }

                if (!trips.TryGetValue(tu.Trip.TripId, out var table))
                {
                    if (tu.Trip.RouteId is not { Length: > 0 } route)
                    {
                        Reject("trip_without_route_id");
                        continue;
                    }

                    trips[tu.Trip.TripId] = table = new TripTable { RouteId = route };
                }

                foreach (var stu in tu.StopTimeUpdate)
                {
                    if (!stu.HasStopSequence || !stu.HasStopId || stu.StopId.Length == 0)
                    {
                        Reject("stop_time_update_without_stop_sequence_and_stop_id");
                        continue;
                    }

                    var arrival = Scheduled(stu.Arrival);
                    var departure = Scheduled(stu.Departure);
                    if (double.IsNaN(arrival) && double.IsNaN(departure))
                    {
                        Reject("stop_time_update_without_time_and_delay");
                        continue;
                    }

                    var old = table.Stops.TryGetValue(stu.StopSequence, out var o) ? o : (stu.StopId, double.NaN, double.NaN);
                    table.Stops[stu.StopSequence] = (stu.StopId, double.IsNaN(arrival) ? old.Item2 : arrival, double.IsNaN(departure) ? old.Item3 : departure);
                }
            }
        }

        if (snapshots == 0)
        {
            throw new InvalidDataException($"{archive}: no GTFS-Realtime snapshots (.pb, .json) in it");
        }

        Directory.CreateDirectory(folder);
        var inv = CultureInfo.InvariantCulture;
        var stopIds = new SortedSet<string>(StringComparer.Ordinal);
        var routeIds = new SortedSet<string>(StringComparer.Ordinal);
        var dates = new SortedSet<DateOnly>();
        var tripsText = new StringBuilder("route_id,service_id,trip_id\n");
        var timesText = new StringBuilder("trip_id,arrival_time,departure_time,stop_id,stop_sequence\n");
        int tripCount = 0, stopTimes = 0;
        foreach (var (tripId, table) in trips.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            if (table.Stops.Count < 2)
            {
                Reject("trip_with_fewer_than_two_stops");
                continue;
            }

            var first = table.Stops.Values.First();
            var firstTime = double.IsNaN(first.Departure) ? first.Arrival : first.Departure;
            var local = TimeZoneInfo.ConvertTimeFromUtc(DateTime.UnixEpoch.AddSeconds(firstTime), timeZone);
            var date = DateOnly.FromDateTime(local);
            var midnight = new DateTimeOffset(date.ToDateTime(TimeOnly.MinValue), timeZone.GetUtcOffset(date.ToDateTime(TimeOnly.MinValue))).ToUnixTimeSeconds();
            dates.Add(date);
            routeIds.Add(table.RouteId);
            tripsText.Append(inv, $"{Csv(table.RouteId)},{ServiceId},{Csv(tripId)}\n");
            tripCount++;
            var previous = double.NegativeInfinity;
            foreach (var (sequence, stop) in table.Stops)
            {
                var arrival = double.IsNaN(stop.Arrival) ? stop.Departure : stop.Arrival;
                var departure = double.IsNaN(stop.Departure) ? arrival : stop.Departure;
                arrival = Math.Max(arrival, previous);
                departure = Math.Max(departure, arrival);
                previous = departure;
                stopIds.Add(stop.StopId);
                timesText.Append(inv, $"{Csv(tripId)},{Clock(arrival - midnight)},{Clock(departure - midnight)},{Csv(stop.StopId)},{sequence}\n");
                stopTimes++;
            }
        }

        if (tripCount == 0)
        {
            throw new InvalidDataException($"{archive}: no trip with two or more stops carrying a time and a delay; no timetable can be inferred");
        }

        File.WriteAllText(Path.Combine(folder, "agency.txt"), $"agency_id,agency_name,agency_url,agency_timezone\nA,Inferred from {Csv(Path.GetFileName(archive))},http://localhost,{timeZone.Id}\n");
        var stopsText = new StringBuilder("stop_id,stop_name,stop_lat,stop_lon\n");
        foreach (var id in stopIds)
        {
            stopsText.Append(inv, $"{Csv(id)},{Csv(id)},0,0\n");
        }

        File.WriteAllText(Path.Combine(folder, "stops.txt"), stopsText.ToString());
        var routesText = new StringBuilder("route_id,agency_id,route_short_name,route_long_name,route_type\n");
        foreach (var id in routeIds)
        {
            routesText.Append(inv, $"{Csv(id)},A,{Csv(id)},,3\n");
        }

        File.WriteAllText(Path.Combine(folder, "routes.txt"), routesText.ToString());
        File.WriteAllText(Path.Combine(folder, "trips.txt"), tripsText.ToString());
        File.WriteAllText(Path.Combine(folder, "stop_times.txt"), timesText.ToString());
        // One service every day of a wide window: the archive names the trips that run, on whichever day it was
        // recorded, so the timetable serves that day and any other (a model scored on a later day, as a timetable).
        var calendar = new StringBuilder("service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n");
        calendar.Append(inv, $"{ServiceId},1,1,1,1,1,1,1,{dates.Min.AddDays(-ValidDays):yyyyMMdd},{dates.Max.AddDays(ValidDays):yyyyMMdd}\n");
        File.WriteAllText(Path.Combine(folder, "calendar.txt"), calendar.ToString());
        return new InferredTimetable(folder, tripCount, stopIds.Count, stopTimes, routeIds.Count, [.. dates], rejections);
    }

    /// <summary>The one service_id of an inferred timetable.</summary>
    public const string ServiceId = "INFERRED";

    /// <summary>Days before the archive's first and after its last service date on which the timetable runs.</summary>
    public const int ValidDays = 366;

    private static double Scheduled(TripUpdate.Types.StopTimeEvent? e) =>
        e is { HasTime: true, Time: > 0, HasDelay: true } ? e.Time - (double)e.Delay : double.NaN;

    private static string Clock(double seconds)
    {
        var s = (long)Math.Round(seconds);
        return string.Create(CultureInfo.InvariantCulture, $"{s / 3600:00}:{s / 60 % 60:00}:{s % 60:00}");
    }

    private static string Csv(string value) =>
        value.Contains(',', StringComparison.Ordinal) || value.Contains('"', StringComparison.Ordinal) ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;
}
