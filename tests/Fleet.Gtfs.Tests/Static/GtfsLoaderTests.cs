using Xunit;

namespace Fleet.Gtfs.Tests.Static;

public sealed class GtfsLoaderTests
{
    [Fact]
    public void Load_MinimalFeed_OrdersStopTimesAndInterpolates()
    {
        using var feed = new TempFeed();

        var schedule = feed.Load();

        Assert.Equal(0, schedule.Report.TotalIssues);
        Assert.True(schedule.TryGetTrip("T1", out var t1));
        var times = schedule.GetStopTimes(t1);
        Assert.Equal([1, 2, 3], times.ToArray().Select(s => s.Sequence));
        Assert.Equal("S2", schedule.Stops[times[1].StopIndex].Id);
        // S2 is half way along the shape (0.0045 of 0.008993 degrees), so the interpolated time is 05:05:00 (± rounding).
        Assert.True(times[1].Interpolated);
        Assert.InRange(times[1].Arrival.TotalSeconds, (5 * 3600) + 299, (5 * 3600) + 301);
        Assert.False(times[0].Interpolated);
    }

    [Fact]
    public void Load_ShapeWithoutDistances_ComputesMetresFromGeometry()
    {
        using var feed = new TempFeed();

        var schedule = feed.Load();

        schedule.TryGetTrip("T1", out var t1);
        var times = schedule.GetStopTimes(t1);
        // 0.008993 degrees of latitude is 1000 m (mean Earth radius 6371.0088 km).
        Assert.Equal(0, times[0].DistanceMetres, 0.5);
        Assert.Equal(500.4, times[1].DistanceMetres, 1.0);
        Assert.Equal(1000, times[2].DistanceMetres, 1.0);
        var path = schedule.GetPath(t1);
        Assert.False(path.FromStops);
        Assert.Equal(1000, path.LengthMetres, 1.0);
    }

    [Fact]
    public void Load_ZipArchive_LoadsLikeFolder()
    {
        using var feed = new TempFeed();

        var schedule = GtfsLoader.Load(feed.Zip());

        Assert.Equal(2, schedule.Trips.Count);
        Assert.Equal(5, schedule.StopTimeCount);
    }

    [Theory]
    [InlineData("stop_times.txt")]
    [InlineData("agency.txt")]
    [InlineData("stops.txt")]
    public void Load_MissingRequiredFile_ThrowsNamingIt(string file)
    {
        using var feed = new TempFeed(null, file);

        var ex = Assert.Throws<GtfsFormatException>(feed.Load);

        Assert.Contains($"'{file}'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_NoCalendarFile_ThrowsNamingBoth()
    {
        using var feed = new TempFeed(null, "calendar.txt", "calendar_dates.txt");

        var ex = Assert.Throws<GtfsFormatException>(feed.Load);

        Assert.Contains("calendar.txt", ex.Message, StringComparison.Ordinal);
        Assert.Contains("calendar_dates.txt", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MissingFeed_ThrowsNamingPath()
    {
        var ex = Assert.Throws<GtfsFormatException>(() => GtfsLoader.Load("/nonexistent/feed.zip"));

        Assert.Contains("/nonexistent/feed.zip", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_BadRows_AreReportedWithFileLineAndReasonAndRestLoads()
    {
        using var feed = new TempFeed(new()
        {
            ["stop_times.txt"] =
                "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n" +
                "T1,05:00:00,05:00:00,S1,1\n" +
                "T1,05:05:00,05:05:00,NOPE,2\n" +     // line 3: unknown stop
                "T9,05:05:00,05:05:00,S2,2\n" +       // line 4: unknown trip
                "T1,5:7:00,05:07:00,S2,2\n" +         // line 5: bad arrival, departure kept
                "T1,05:10:00,05:10:00,S3,x\n" +       // line 6: bad sequence
                "T1,05:10:00,05:10:00,S3,3\n",
            ["stops.txt"] = TempFeed.Minimal["stops.txt"] + "S4,Bad,95.0,25.0\n", // line 5: bad coordinate
        });

        var schedule = feed.Load();

        var issues = schedule.Report.Issues;
        Assert.Contains(issues, i => i is { File: "stop_times.txt", Line: 3, Kind: "unknown_stop" } && i.Message.Contains("NOPE", StringComparison.Ordinal));
        Assert.Contains(issues, i => i is { File: "stop_times.txt", Line: 4, Kind: "unknown_trip" });
        Assert.Contains(issues, i => i is { File: "stop_times.txt", Line: 5, Kind: "bad_time" });
        Assert.Contains(issues, i => i is { File: "stop_times.txt", Line: 6, Kind: "bad_value" });
        Assert.Contains(issues, i => i is { File: "stops.txt", Line: 5, Kind: "bad_coordinate" });
        Assert.Equal(5, schedule.Report.TotalIssues);
        schedule.TryGetTrip("T1", out var t1);
        var times = schedule.GetStopTimes(t1);
        Assert.Equal(3, times.Length);
        Assert.Equal(ServiceTime.Parse("05:07:00"), times[1].Arrival);
    }

    [Fact]
    public void Load_MissingRequiredColumn_ThrowsNamingFileAndColumn()
    {
        using var feed = new TempFeed(new() { ["trips.txt"] = "route_id,trip_id\nR,T1\n" });

        var ex = Assert.Throws<GtfsFormatException>(feed.Load);

        Assert.Contains("trips.txt", ex.Message, StringComparison.Ordinal);
        Assert.Contains("service_id", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_UnknownTimeZone_Throws()
    {
        using var feed = new TempFeed(new() { ["agency.txt"] = "agency_id,agency_name,agency_url,agency_timezone\nA,A,http://a,Mars/Olympus\n" });

        var ex = Assert.Throws<GtfsFormatException>(feed.Load);

        Assert.Contains("agency_timezone", ex.Message, StringComparison.Ordinal);
    }
}
