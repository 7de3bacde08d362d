using Xunit;

namespace Fleet.Gtfs.Tests.Static;

public sealed class ScheduleTests
{
    private static readonly DateOnly Monday = new(2026, 1, 5);

    [Fact]
    public void TripsOnDate_CalendarAndExceptions_Apply()
    {
        using var feed = new TempFeed();
        var schedule = feed.Load();

        Assert.Equal(2, schedule.TripsOnDate(Monday).Length);
        Assert.Empty(schedule.TripsOnDate(new DateOnly(2026, 1, 6)));   // removed by calendar_dates
        Assert.Empty(schedule.TripsOnDate(new DateOnly(2026, 1, 11)));  // Sunday
        Assert.Equal(2, schedule.TripsOnDate(new DateOnly(2026, 1, 10)).Length); // Saturday added
        Assert.Equal(new DateOnly(2026, 1, 1), schedule.ServiceStart);
        Assert.Equal(new DateOnly(2026, 12, 31), schedule.ServiceEnd);
    }

    [Fact]
    public void ToUtc_TimePastMidnight_IsNextMorningInAgencyZone()
    {
        using var feed = new TempFeed();
        var schedule = feed.Load();

        // Helsinki is UTC+2 in January: 25:10 on Jan 5 is 01:10 local on Jan 6 = 23:10Z on Jan 5.
        var utc = schedule.ToUtc(Monday, ServiceTime.Parse("25:10:00"));

        Assert.Equal(new DateTime(2026, 1, 5, 23, 10, 0, DateTimeKind.Utc), utc);
        Assert.Equal(ServiceTime.Parse("25:10:00"), schedule.ToServiceTime(Monday, utc));
    }

    [Fact]
    public void ToUtc_DaylightSavingDay_CountsFromNoonMinus12Hours()
    {
        using var feed = new TempFeed();
        var schedule = feed.Load();
        var dstDay = new DateOnly(2026, 3, 29); // EU clocks go forward at 03:00 local (01:00Z)

        // Noon is 09:00Z (UTC+3), so the day's origin is 21:00Z the day before and 08:00:00 is 05:00Z.
        Assert.Equal(new DateTime(2026, 3, 29, 5, 0, 0, DateTimeKind.Utc), schedule.ToUtc(dstDay, ServiceTime.Parse("08:00:00")));
    }

    [Fact]
    public void TryFindTrip_RouteDirectionDateStart_FindsTrip()
    {
        using var feed = new TempFeed();
        var schedule = feed.Load();

        Assert.True(schedule.TryFindTrip("R", 1, Monday, ServiceTime.Parse("25:00:00"), out var found));
        Assert.Equal("T2", schedule.Trips[found.TripIndex].Id);
        Assert.True(schedule.TryFindTrip("R", -1, Monday, ServiceTime.Parse("05:00:00"), out found));
        Assert.Equal("T1", schedule.Trips[found.TripIndex].Id);
        Assert.False(schedule.TryFindTrip("R", 1, Monday, ServiceTime.Parse("05:00:00"), out _));
        Assert.False(schedule.TryFindTrip("R", 0, new DateOnly(2026, 1, 6), ServiceTime.Parse("05:00:00"), out _));
        Assert.False(schedule.TryFindTrip("X", 0, Monday, ServiceTime.Parse("05:00:00"), out _));
    }

    [Fact]
    public void TryFindTrip_FrequencyTrip_MatchesOnlyOnHeadwayGridWhenExact()
    {
        using var feed = new TempFeed(new() { ["frequencies.txt"] = "trip_id,start_time,end_time,headway_secs, exact_times\nT1,06:00:00,08:00:00,600,1\n" });
        var schedule = feed.Load();

        Assert.True(schedule.TryFindTrip("R", 0, Monday, ServiceTime.Parse("06:20:00"), out var found));
        Assert.Equal("T1", schedule.Trips[found.TripIndex].Id);
        Assert.Equal(3600 + 1200, found.OffsetSeconds);
        Assert.False(schedule.TryFindTrip("R", 0, Monday, ServiceTime.Parse("06:25:00"), out _));
        Assert.False(schedule.TryFindTrip("R", 0, Monday, ServiceTime.Parse("08:00:00"), out _));
    }

    [Fact]
    public void GetPath_TripWithoutShape_UsesStops()
    {
        using var feed = new TempFeed();
        var schedule = feed.Load();
        schedule.TryGetTrip("T2", out var t2);

        var path = schedule.GetPath(t2);

        Assert.True(path.FromStops);
        Assert.Equal(1000, path.LengthMetres, 1.0);
        Assert.Same(path, schedule.GetPath(t2));
    }

    [Fact]
    public void Project_PointBesideShape_GivesAlongAndOff()
    {
        using var feed = new TempFeed();
        var schedule = feed.Load();
        schedule.TryGetTrip("T1", out var t1);
        var path = schedule.GetPath(t1);

        // 0.0009 degrees of longitude at 60°N is about 50 m east of the line.
        var p = path.Project(60.0045, 25.0009);

        Assert.Equal(500.4, p.AlongMetres, 1.0);
        Assert.Equal(50.0, p.OffMetres, 1.0);
        var (lat, lon) = path.PointAt(p.AlongMetres);
        Assert.Equal(60.0045, lat, 5);
        Assert.Equal(25.0, lon, 5);
    }

    [Fact]
    public void FindStopSequence_KnownAndUnknown()
    {
        using var feed = new TempFeed();
        var schedule = feed.Load();
        schedule.TryGetTrip("T1", out var t1);

        Assert.Equal(2, schedule.FindStopSequence(t1, 3));
        Assert.Equal(-1, schedule.FindStopSequence(t1, 4));
    }
}
