using System.Globalization;
using System.IO.Compression;
using System.Text;
using Fleet.Simulation.City;

namespace Fleet.Simulation.Output;

/// <summary>Writes a <see cref="CityModel"/> as a GTFS static feed (a zip of CSV files).</summary>
/// <remarks>
/// Byte-for-byte deterministic: fixed entry order, fixed entry timestamps, fixed compression level, invariant
/// number formatting, LF line ends. Stateless; thread-safe.
/// </remarks>
public static class GtfsZipWriter
{
    /// <summary>The timestamp every zip entry carries (the zip format stores local "DOS" time without a zone).</summary>
    private static readonly DateTimeOffset EntryTime = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Writes the feed to a stream.</summary>
    public static void Write(CityModel city, Stream output)
    {
        ArgumentNullException.ThrowIfNull(city);
        ArgumentNullException.ThrowIfNull(output);
        using var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true);
        var net = city.Network;
        var proj = net.Projection;
        var ci = CultureInfo.InvariantCulture;
        var date = city.Options.Date;

        Entry(zip, "agency.txt", w =>
        {
            w.Append("agency_id,agency_name,agency_url,agency_timezone,agency_lang\n");
            w.Append(ci, $"FLEET,Fleet Synthetic Transit (city {city.Options.City}),https://example.org/fleet,{city.TimeZone.Id},fi\n");
        });
        Entry(zip, "feed_info.txt", w =>
        {
            w.Append("feed_publisher_name,feed_publisher_url,feed_lang,feed_start_date,feed_end_date,feed_version\n");
            w.Append(ci, $"Fleet generator,https://example.org/fleet,fi,{date:yyyyMMdd},{date.AddDays(364):yyyyMMdd},city-{city.Options.City}\n");
        });
        Entry(zip, "calendar.txt", w =>
        {
            w.Append("service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n");
            w.Append(ci, $"ALL,1,1,1,1,1,1,1,{date:yyyyMMdd},{date.AddDays(364):yyyyMMdd}\n");
        });
        Entry(zip, "routes.txt", w =>
        {
            w.Append("route_id,agency_id,route_short_name,route_long_name,route_type\n");
            foreach (var r in city.Routes)
            {
                w.Append(ci, $"{r.Id},FLEET,{r.ShortName},{Csv($"{r.Patterns[1].Headsign} - {r.Patterns[0].Headsign}")},3\n");
            }
        });
        Entry(zip, "stops.txt", w =>
        {
            w.Append("stop_id,stop_code,stop_name,stop_lat,stop_lon,location_type\n");
            foreach (var s in city.Stops)
            {
                w.Append(ci, $"{s.Id},{s.Number % 10000:D4},{Csv(s.Name)},{proj.Latitude(s.Y):F6},{proj.Longitude(s.X):F6},0\n");
            }
        });
        Entry(zip, "shapes.txt", w =>
        {
            w.Append("shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence,shape_dist_traveled\n");
            foreach (var p in city.Routes.SelectMany(r => r.Patterns))
            {
                for (var k = 0; k < p.Nodes.Length; k++)
                {
                    var n = p.Nodes[k];
                    w.Append(ci, $"{p.ShapeId},{proj.Latitude(net.NodeY[n]):F6},{proj.Longitude(net.NodeX[n]):F6},{k + 1},{p.NodeDistance[k]:F1}\n");
                }
            }
        });
        Entry(zip, "trips.txt", w =>
        {
            w.Append("route_id,service_id,trip_id,trip_headsign,direction_id,block_id,shape_id\n");
            foreach (var t in city.Trips)
            {
                w.Append(ci, $"{t.Pattern.Route.Id},ALL,{t.Id},{Csv(t.Pattern.Headsign)},{t.Pattern.Direction},{city.Blocks[t.Block].Id},{t.Pattern.ShapeId}\n");
            }
        });
        Entry(zip, "stop_times.txt", w =>
        {
            w.Append("trip_id,arrival_time,departure_time,stop_id,stop_sequence,timepoint,shape_dist_traveled\n");
            foreach (var t in city.Trips)
            {
                var p = t.Pattern;
                for (var k = 0; k < p.Stops.Length; k++)
                {
                    w.Append(ci, $"{t.Id},{GtfsTime(t.Arrival[k])},{GtfsTime(t.Departure[k])},{city.Stops[p.Stops[k]].Id},{k + 1},{(p.Timepoint[k] ? 1 : 0)},{p.StopDistance[k]:F1}\n");
                }
            }
        });
    }

    /// <summary>Formats service-day seconds as GTFS <c>HH:MM:SS</c> (hours may exceed 23).</summary>
    public static string GtfsTime(int seconds) =>
        string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600:D2}:{seconds / 60 % 60:D2}:{seconds % 60:D2}");

    private static string Csv(string value) =>
        value.AsSpan().IndexOfAny(",\"\n") >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;

    private static void Entry(ZipArchive zip, string name, Action<StringBuilder> fill)
    {
        var text = new StringBuilder();
        fill(text);
        var entry = zip.CreateEntry(name, CompressionLevel.Optimal);
        entry.LastWriteTime = EntryTime;
        using var stream = entry.Open();
        var bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text.ToString());
        stream.Write(bytes);
    }
}
