using Fleet.Testing;
using Xunit;

namespace Fleet.Gtfs.Tests.Static;

/// <summary>
/// Every real feed in ../shared/data/gtfs-static, against the figures in its PROVENANCE.md.
/// Counts were cross-checked by hand: rows = `unzip -p FEED FILE | wc -l` minus the header (files without a
/// final newline counted +1); shapes = distinct first column of shapes.txt (Python csv); service start/end =
/// first/last date on which any service is active, computed from calendar.txt + calendar_dates.txt with a
/// separate Python script (/tmp/svc.py during development).
/// Two figures differ from PROVENANCE.md on purpose: BART's routes.txt holds 8 routes (the 9th "line" is a
/// lone CR), and 77 of NYC's 143616 stop_times rows name a stop_id absent from stops.txt (counted with Python's
/// csv module), so 143539 load and 77 are reported as unknown_stop.
/// </summary>
public sealed class StaticConformanceTests
{
    /// <summary>Each feed is loaded once per test run (a Schedule is immutable, so sharing it is safe).</summary>
    internal static Schedule Loaded(string path) =>
        s_loaded.GetOrAdd(path, p => new Lazy<Schedule>(() => GtfsLoader.Load(p))).Value;

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<Schedule>> s_loaded = new();

    public static TheoryData<string, int, int, int, int, int, int, string, string> Feeds => new()
    {
        // file, agencies, routes, stops, trips, stop_times, shapes, service start, service end
        { "caltrain_2023-09-23_2024-06-01.zip", 1, 9, 109, 176, 3498, 33, "2023-09-23", "2024-06-01" },
        { "bart_2019-02-11_2020-02-10.zip", 1, 8, 48, 2641, 32185, 16, "2019-02-11", "2020-02-10" },
        { "usf-bullrunner_2015-01-01_2020-12-31.zip", 1, 6, 125, 15, 473, 6, "2015-01-01", "2020-12-31" },
        { "soundtransit-link_2023-03-18_2023-07-30.zip", 1, 5, 149, 734, 13314, 35, "2023-03-18", "2023-07-30" },
        { "nyct-subway_oba-cut_2024-03.zip", 1, 23, 3799, 5164, 143616 - 77, 190, "2023-05-28", "2023-11-19" },
    };

    [Theory]
    [MemberData(nameof(Feeds))]
    public void Load_RealFeed_MatchesProvenanceFigures(string file, int agencies, int routes, int stops, int trips, int stopTimes, int shapes, string start, string end)
    {
        var path = SharedData.RequireFile(Path.Combine("gtfs-static", file));

        var schedule = Loaded(path);

        Assert.Equal(agencies, schedule.Agencies.Count);
        Assert.Equal(routes, schedule.Routes.Count);
        Assert.Equal(stops, schedule.Stops.Count);
        Assert.Equal(trips, schedule.Trips.Count);
        Assert.Equal(stopTimes, schedule.StopTimeCount);
        Assert.Equal(shapes, schedule.ShapeIds.Count);
        Assert.Equal(DateOnly.Parse(start, System.Globalization.CultureInfo.InvariantCulture), schedule.ServiceStart);
        Assert.Equal(DateOnly.Parse(end, System.Globalization.CultureInfo.InvariantCulture), schedule.ServiceEnd);
        // NYC: 77 unknown stops (above) and one trip with direction_id 2 (Python: Counter of trips.txt direction_id).
        var expected = file.StartsWith("nyct", StringComparison.Ordinal)
            ? new Dictionary<string, int> { ["unknown_stop"] = 77, ["bad_value"] = 1 }
            : [];
        Assert.True(
            expected.OrderBy(p => p.Key).SequenceEqual(schedule.Report.CountsByKind.OrderBy(p => p.Key)),
            string.Join("\n", schedule.Report.Issues.Take(10)));
    }

    [Theory]
    [MemberData(nameof(Feeds))]
    public void Load_RealFeed_StopTimesOrderedWithNonDecreasingDistance(string file, int agencies, int routes, int stops, int trips, int stopTimes, int shapes, string start, string end)
    {
        _ = (agencies, routes, stops, trips, stopTimes, shapes, start, end);
        var schedule = Loaded(SharedData.RequireFile(Path.Combine("gtfs-static", file)));

        for (var t = 0; t < schedule.Trips.Count; t++)
        {
            var times = schedule.GetStopTimes(t);
            for (var i = 1; i < times.Length; i++)
            {
                // Messages are built only on failure: formatting 143k of them costs seconds.
                if (times[i].Sequence <= times[i - 1].Sequence || times[i].DistanceMetres < times[i - 1].DistanceMetres)
                {
                    Assert.Fail($"{file} trip {schedule.Trips[t].Id}: sequence or distance decreases at stop {i}");
                }
            }

            var path2 = schedule.GetPath(t);
            if (times.Length > 0 && times[^1].DistanceMetres > path2.LengthMetres + 1)
            {
                Assert.Fail($"{file} trip {schedule.Trips[t].Id} last stop beyond its path");
            }
        }
    }

    [Fact]
    public void Load_Caltrain_TimeZoneAndStopsLieOnTheirShape()
    {
        var schedule = Loaded(SharedData.RequireFile("gtfs-static/caltrain_2023-09-23_2024-06-01.zip"));

        Assert.Equal("America/Los_Angeles", schedule.Agencies[0].TimeZoneId);
        Assert.True(schedule.TryGetTrip("501", out var trip));
        Assert.Equal(ServiceTime.Parse("05:00:00"), schedule.GetStartTime(trip));
        var path = schedule.GetPath(trip);
        foreach (var st in schedule.GetStopTimes(trip))
        {
            var stop = schedule.Stops[st.StopIndex];
            var p = path.Project(stop.Latitude, stop.Longitude);
            // Platforms lie beside the track; the mapped shape_dist_traveled and the projection agree within 150 m.
            Assert.True(p.OffMetres < 150, $"stop {stop.Id} is {p.OffMetres:F0} m off the shape");
            Assert.True(Math.Abs(p.AlongMetres - st.DistanceMetres) < 150, $"stop {stop.Id}: projected {p.AlongMetres:F0} m, stop_times {st.DistanceMetres:F0} m");
        }
    }

    [Fact]
    public void Load_BullRunner_FrequencyTripsJoinByStartTime()
    {
        var schedule = Loaded(SharedData.RequireFile("gtfs-static/usf-bullrunner_2015-01-01_2020-12-31.zip"));

        // frequencies.txt: trip 1 on route A, 07:00:00-24:00:00 every 600 s, exact_times 0 (any start in the window).
        Assert.True(schedule.TryGetTrip("1", out var t1));
        Assert.True(schedule.Trips[t1].IsFrequencyBased);
        Assert.True(schedule.TryFindTrip("A", -1, new DateOnly(2017, 9, 13), ServiceTime.Parse("10:03:00"), out var found));
        Assert.Equal("A", schedule.Routes[schedule.Trips[found.TripIndex].RouteIndex].Id);
    }
}
