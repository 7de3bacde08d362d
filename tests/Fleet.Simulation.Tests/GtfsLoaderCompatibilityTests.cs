using Fleet.Gtfs;

namespace Fleet.Simulation.Tests;

/// <summary>The generated gtfs.zip loaded by the project's own GTFS static loader.</summary>
public sealed class GtfsLoaderCompatibilityTests : IClassFixture<GeneratedCityFixture>
{
    private readonly GeneratedCityFixture _city;

    public GtfsLoaderCompatibilityTests(GeneratedCityFixture city) => _city = city;

    [Fact]
    public void Gtfs_LoadedByGtfsLoader_NoIssuesAndEveryTripRunsOnTheDate()
    {
        var schedule = GtfsLoader.Load(_city.Summary.GtfsPath);

        Assert.Equal(0, schedule.Report.TotalIssues);
        Assert.Equal("Europe/Helsinki", schedule.TimeZone.Id);
        Assert.Equal(_city.Summary.Trips, schedule.Trips.Count);
        Assert.Equal(_city.Summary.Stops, schedule.Stops.Count);
        Assert.Equal(_city.Summary.Trips, schedule.TripsOnDate(GeneratedCityFixture.SmallCity.Date).Length);
    }
}
