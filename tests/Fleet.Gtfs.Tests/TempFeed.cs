using System.IO.Compression;

namespace Fleet.Gtfs.Tests;

/// <summary>A small GTFS feed written to a temporary folder (and optionally zipped) for loader tests.</summary>
internal sealed class TempFeed : IDisposable
{
    public TempFeed(Dictionary<string, string>? overrides = null, params string[] omit)
    {
        Folder = Path.Combine(Path.GetTempPath(), "fleet-gtfs-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Folder);
        var files = new Dictionary<string, string>(Minimal);
        foreach (var (k, v) in overrides ?? [])
        {
            files[k] = v;
        }

        foreach (var (name, text) in files)
        {
            if (!omit.Contains(name))
            {
                File.WriteAllText(Path.Combine(Folder, name), text);
            }
        }
    }

    public string Folder { get; }

    public string Zip()
    {
        var zip = Folder + ".zip";
        ZipFile.CreateFromDirectory(Folder, zip);
        return zip;
    }

    public Schedule Load() => GtfsLoader.Load(Folder);

    public void Dispose()
    {
        Directory.Delete(Folder, recursive: true);
        File.Delete(Folder + ".zip");
    }

    /// <summary>
    /// One agency in Helsinki time, two stops 1 km apart on a straight north-south shape, one route,
    /// trip T1 (05:00 - 05:10, direction 0) and T2 (25:00 - 25:10, direction 1) on weekday service WK.
    /// </summary>
    public static readonly Dictionary<string, string> Minimal = new()
    {
        ["agency.txt"] = "agency_id,agency_name,agency_url,agency_timezone\nA,Agency,http://a,Europe/Helsinki\n",
        ["stops.txt"] = "stop_id,stop_name,stop_lat,stop_lon\nS1,One,60.000000,25.000000\nS2,Two,60.004500,25.000000\nS3,Three,60.008993,25.000000\n",
        ["routes.txt"] = "route_id,agency_id,route_short_name,route_long_name,route_type\nR,A,1,One,3\n",
        ["trips.txt"] = "route_id,service_id,trip_id,direction_id,shape_id\nR,WK,T1,0,SH\nR,WK,T2,1,\n",
        ["stop_times.txt"] =
            "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n" +
            "T1,05:10:00,05:10:00,S3,3\nT1,,,S2,2\nT1,05:00:00,05:00:00,S1,1\n" +
            "T2,25:00:00,25:00:00,S3,1\nT2,25:10:00,25:10:00,S1,2\n",
        ["calendar.txt"] = "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\nWK,1,1,1,1,1,0,0,20260101,20261231\n",
        ["calendar_dates.txt"] = "service_id,date,exception_type\nWK,20260106,2\nWK,20260110,1\n",
        ["shapes.txt"] = "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\nSH,60.000000,25.000000,1\nSH,60.008993,25.000000,2\n",
    };
}
