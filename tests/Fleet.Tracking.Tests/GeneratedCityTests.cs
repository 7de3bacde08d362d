using System.Globalization;
using Fleet.Gtfs;
using Fleet.Simulation;
using Fleet.Tracking.Output;
using Fleet.Tracking.Replay;
using Fleet.Tracking.Schedule;

namespace Fleet.Tracking.Tests;

/// <summary>One small generated city, tracked once and shared by the tests that score it against truth.csv.</summary>
public class GeneratedCityFixture : IDisposable
{
    public GeneratedCityFixture()
        : this(new TrackingOptions())
    {
    }

    protected GeneratedCityFixture(TrackingOptions options)
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("fleet-track-city").FullName;
        Summary = CityGenerator.Generate(new GenerateOptions { City = 3, Seed = 11, Routes = 8, Vehicles = 60, Hours = 1.5 }, Directory);
        Schedule = GtfsLoader.Load(Summary.GtfsPath);
        var output = new ListOutput();
        var engine = new TrackingEngine(new GtfsTripCatalog(Schedule), options, output, partitions: 2);
        var replay = new TrackingReplay(engine, Schedule);
        replay.ReadFile(Summary.RecordingPath);
        replay.Complete();
        Events = output.Events;
        Figures = replay.Figures;
        Truth = [.. File.ReadLines(Summary.TruthPath).Skip(1).Select(TruthRow.Parse)];
    }

    public string Directory { get; }

    public GenerateSummary Summary { get; }

    public Fleet.Gtfs.Schedule Schedule { get; }

    public List<DerivedEvent> Events { get; }

    public ReplayFigures Figures { get; }

    public List<TruthRow> Truth { get; }

    /// <summary>
    /// truth.csv's arrivals inside the recorded window (the truth also has the stops its trips reached before the
    /// recording began and after it ended, which no tracker can see).
    /// </summary>
    public IEnumerable<TruthRow> RecordedTruth => Truth.Where(t => t.Arrival >= Summary.RecordedFrom && t.Arrival < Summary.RecordedUntil);

    /// <summary>Asserts that at least <paramref name="share"/> of the recorded arrivals were detected within 10 s.</summary>
    public void AssertArrivalsWithin10Seconds(double share)
    {
        var detected = Events.Where(d => d.Type == DerivedEventType.Arrival && d.TripId is not null)
            .GroupBy(d => (d.TripId!, d.StopSequence)).ToDictionary(g => g.Key, g => g.First().Time);

        var truth = RecordedTruth.ToList();
        var within = truth.Count(t => detected.TryGetValue((t.TripId, t.Sequence), out var at) && (at - t.Arrival).Duration() <= TimeSpan.FromSeconds(10));

        Assert.True(truth.Count > 500 && truth.Count < Truth.Count, $"{truth.Count} of {Truth.Count} truth rows in the recorded window");
        var measured = (double)within / truth.Count;
        Assert.True(measured >= share, $"{within} of {truth.Count} arrivals within 10 s ({measured:P2})");
    }

    public void Dispose()
    {
        System.IO.Directory.Delete(Directory, recursive: true);
        GC.SuppressFinalize(this);
    }
}

/// <summary>The same city tracked as <c>fleet serve</c> tracks live feeds: nothing held (<see cref="TrackingOptions.Live"/>).</summary>
public sealed class LiveGeneratedCityFixture() : GeneratedCityFixture(TrackingOptions.Live());

public sealed class LiveGeneratedCityTests(LiveGeneratedCityFixture city) : IClassFixture<LiveGeneratedCityFixture>
{
    [Fact]
    public void Arrivals_LiveOptionsNothingHeld_AtLeast99PercentWithin10Seconds()
    {
        city.AssertArrivalsWithin10Seconds(0.99);
    }

    [Fact]
    public void LateEvents_LiveOptionsOnTunnelBursts_NoneDropped()
    {
        // A tunnel burst delivers a vehicle's held messages late but in order, before its next live one: with nothing
        // held, none of them is older than what its vehicle already sent.
        Assert.True(city.Summary.Day.BufferedMessages > 0, "the generated day has no tunnel burst; pick another seed");
        Assert.True(city.Figures.Tracking.Late == 0, $"late {city.Figures.Tracking.Late}, corrected {city.Figures.Tracking.Corrected}, duplicates {city.Figures.Tracking.Duplicates}, events {city.Figures.Tracking.Events}, buffered {city.Summary.Day.BufferedMessages}");
    }
}

public sealed record TruthRow(string TripId, string StopId, int Sequence, string Vehicle, DateTime Arrival, DateTime Departure)
{
    public static TruthRow Parse(string line)
    {
        var f = line.Split(',');
        return new TruthRow(f[0], f[1], int.Parse(f[2], CultureInfo.InvariantCulture), f[3],
            DateTime.Parse(f[4], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal),
            DateTime.Parse(f[5], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal));
    }
}

public sealed class GeneratedCityTests(GeneratedCityFixture city) : IClassFixture<GeneratedCityFixture>
{
    [Fact]
    public void Arrivals_AgainstTruth_AtLeast99PercentWithin10Seconds()
    {
        city.AssertArrivalsWithin10Seconds(0.99);
    }

    [Fact]
    public void Detours_RaiseOffRouteAlerts_OnePerDetouredTrip()
    {
        var trips = city.Events.Where(d => d.Type == DerivedEventType.Alert && d.Kind == AlertKind.OffRoute && !d.Cleared)
            .Select(d => d.TripId).Distinct().Count();

        Assert.True(city.Summary.Day.Detours > 0, "the generated day has no detour; pick another seed");
        Assert.Equal(city.Summary.Day.Detours, trips);
    }

    [Fact]
    public void Bunching_WhereTruthHeadwayUnderQuarterOfSchedule_Detected()
    {
        // Expected from truth.csv and the schedule alone: at each stop, per route and direction, consecutive actual
        // arrivals whose headway is under 25% of the scheduled headway (previous scheduled arrival at the stop).
        var schedule = city.Schedule;
        var keyOf = new Dictionary<string, (string Route, int Dir)>();
        foreach (var t in schedule.Trips)
        {
            keyOf[t.Id] = (schedule.Routes[t.RouteIndex].Id, t.DirectionId);
        }

        var scheduled = new Dictionary<(string Trip, int Seq), DateTime>();
        var date = schedule.ServiceStart!.Value;
        foreach (var (t, i) in schedule.Trips.Select((t, i) => (t, i)))
        {
            foreach (var st in schedule.GetStopTimes(i))
            {
                scheduled[(t.Id, st.Sequence)] = schedule.ToUtc(date, st.Arrival);
            }
        }

        // Detected arrivals are a few seconds off the truth, so pairs within 10 s of the threshold may go either way:
        // "expected" are clearly under it, "acceptable" are clearly not over it.
        var expected = new HashSet<(string Follower, string LeaderVehicle)>();
        var acceptable = new HashSet<(string Follower, string LeaderVehicle)>();
        foreach (var lane in city.Truth.GroupBy(r => (keyOf[r.TripId], r.StopId)))
        {
            var byActual = lane.OrderBy(r => r.Arrival).ToList();
            var plannedTimes = lane.Select(r => scheduled[(r.TripId, r.Sequence)]).Distinct().Order().ToList();
            for (var i = 1; i < byActual.Count; i++)
            {
                var mine = scheduled[(byActual[i].TripId, byActual[i].Sequence)];
                var before = plannedTimes.LastOrDefault(p => p < mine);
                if (before == default)
                {
                    continue;
                }

                var headway = (byActual[i].Arrival - byActual[i - 1].Arrival).TotalSeconds;
                var limit = 0.25 * (mine - before).TotalSeconds;
                if (headway < limit - 10)
                {
                    expected.Add((byActual[i].TripId, byActual[i - 1].Vehicle));
                }

                if (headway < limit + 10)
                {
                    acceptable.Add((byActual[i].TripId, byActual[i - 1].Vehicle));
                }
            }
        }

        var detected = city.Events.Where(d => d.Kind == AlertKind.Bunching).Select(d => (d.TripId!, d.Other!)).ToHashSet();

        Assert.True(expected.Count > 0, "the generated day has no bunching; pick another seed");
        var found = expected.Count(detected.Contains);
        Assert.True(found >= 0.9 * expected.Count, $"{found} of {expected.Count} bunched pairs detected");
        var correct = detected.Count(acceptable.Contains);
        Assert.True(correct >= 0.9 * detected.Count, $"{correct} of {detected.Count} bunching alerts are in the truth");
    }

    [Fact]
    public void Replay_BatchesOverlappedWithParsing_SameBytes()
    {
        Assert.Equal(Run(city, 2, overlap: false), Run(city, 2, overlap: true));
    }

    [Fact]
    public void Replay_TwoRuns_ByteIdenticalEvents()
    {
        Assert.Equal(Run(city, 2, overlap: false), Run(city, 3, overlap: false));
    }

    private static string Run(GeneratedCityFixture city, int partitions, bool overlap)
    {
        using var memory = new MemoryStream();
        using (var json = new JsonLinesOutput(memory, leaveOpen: true))
        {
            var engine = new TrackingEngine(new GtfsTripCatalog(city.Schedule), new TrackingOptions(), json, partitions, batchSize: 4096)
            {
                OverlapBatches = overlap,
            };
            var replay = new TrackingReplay(engine, city.Schedule);
            replay.ReadFile(city.Summary.RecordingPath);
            replay.Complete();
        }

        return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(memory.ToArray()));
    }
}
