using Fleet.Gtfs;
using Fleet.Predict.Evaluation;
using Fleet.Predict.Offline;
using Fleet.Testing;

namespace Fleet.Predict.Tests.Offline;

/// <summary>
/// Real data: Auckland Transport's TripUpdates of 2016-05-19 (../shared/data), routes 005, 007 and 008 (the static
/// subset). Trained on the polls before 14:00, scored on those after (the afternoon was not trained on).
/// </summary>
public sealed class AucklandDayTests(ITestOutputHelper log)
{
    private const string Archive = "gtfs-rt/auckland-tripupdates_2016-05-19/auckland-tripupdates_2016-05-19.tar.gz";
    private const string Static = "gtfs-static/auckland_2016-05_routes005-007-008.zip";

    [Fact]
    public void Routes005to008_TrainMorning_EvaluateAfternoon_ModelNeverWorseThanBestBaseline_BeatsDelayCarriedForward()
    {
        var archive = SharedData.RequireFile(Archive);
        var schedule = GtfsLoader.Load(SharedData.RequireFile(Static));
        var ct = TestContext.Current.CancellationToken;
        Assert.True(PollWindow.TryParse("00:00-14:00", out var morning));
        Assert.True(PollWindow.TryParse("14:00-24:00", out var afternoon));

        var train = TripUpdateDays.Read(schedule, archive, new ReplayOptions(), morning, null, ct);
        var test = TripUpdateDays.Read(schedule, archive, new ReplayOptions(), afternoon, null, ct);
        var model = ArrivalPipeline.Train(schedule, [train.Day], new ArrivalTrainingOptions { ValidateOnLatest = true }, cancellationToken: ct).Model;
        var result = ArrivalPipeline.EvaluateDays(schedule, [test.Day], model.Bind(schedule), cancellationToken: ct);

        log.WriteLine($"train: {train.Snapshots} snapshots, {train.TripsMatched} trips, {train.Events} events; test: {test.Snapshots} snapshots, {test.TripsMatched} trips");
        log.WriteLine(result.Scorecard.ToTable());
        Assert.True(train.Snapshots + test.Snapshots == 1396, $"{train.Snapshots} + {test.Snapshots} snapshots");
        Assert.True(result.TripsScored >= 70, $"{result.TripsScored} trips scored");
        Assert.True(result.TripsSkipped > 4000, $"{result.TripsSkipped} trips skipped");
        Assert.DoesNotContain(test.Rejections.Keys, k => k != "stop_time_update_without_observed_time");
        var card = result.Scorecard;
        for (var b = 0; b < HorizonBucket.All.Count; b++)
        {
            var m = card.Score("model", b);
            if (m.N < 50)
            {
                continue;
            }

            var best = new[] { "schedule", "delay", "historical", "kalman" }.Select(p => (Name: p, Score: card.Score(p, b))).MinBy(p => p.Score.Mae);
            Assert.True(m.Mae <= 1.02 * best.Score.Mae, $"bucket {HorizonBucket.All[b].Name}: model {m.Mae:0.0} s against {best.Name} {best.Score.Mae:0.0} s");
        }

        foreach (var b in new[] { 3, 4 }) // 5-10 and 10-15 min: measured 17% and 14% below (docs/PREDICTION.md)
        {
            Assert.True(card.Score("model", b).Mae < 0.9 * card.Score("delay", b).Mae,
                $"bucket {HorizonBucket.All[b].Name}: model {card.Score("model", b).Mae:0.0} s, delay carried forward {card.Score("delay", b).Mae:0.0} s");
        }
    }

    [Fact]
    public void WholeNetwork_TimetableInferred_TrainMorning_EvaluateAfternoon_MeetsTheTargets()
    {
        var archive = SharedData.RequireFile(Archive);
        var ct = TestContext.Current.CancellationToken;
        var folder = Directory.CreateTempSubdirectory("fleet-auckland-tt-").FullName;
        try
        {
            var inferred = Fleet.Gtfs.Realtime.TimetableInference.Write(archive, TimeZoneInfo.FindSystemTimeZoneById("Pacific/Auckland"), folder, ct);
            var schedule = GtfsLoader.Load(folder);
            Assert.True(inferred.Trips > 8000, $"{inferred.Trips} trips inferred");
            Assert.True(PollWindow.TryParse("00:00-14:00", out var morning));
            Assert.True(PollWindow.TryParse("14:00-24:00", out var afternoon));

            var train = TripUpdateDays.Read(schedule, archive, new ReplayOptions(), morning, null, ct);
            var model = ArrivalPipeline.Train(schedule, [train.Day], new ArrivalTrainingOptions { ValidateOnLatest = true }, cancellationToken: ct).Model;
            var test = TripUpdateDays.Read(schedule, archive, new ReplayOptions(), afternoon, null, ct);
            var result = ArrivalPipeline.EvaluateDays(schedule, [test.Day], model.Bind(schedule), cancellationToken: ct);

            log.WriteLine(result.Scorecard.ToTable());
            Assert.True(result.TripsScored > 4000, $"{result.TripsScored} trips scored");
            var card = result.Scorecard;
            for (var b = 0; b < HorizonBucket.All.Count; b++)
            {
                var best = new[] { "schedule", "delay", "historical", "kalman" }.Select(p => (Name: p, Score: card.Score(p, b))).MinBy(p => p.Score.Mae);
                Assert.True(card.Score("model", b).Mae <= 1.02 * best.Score.Mae, $"bucket {HorizonBucket.All[b].Name}: model {card.Score("model", b).Mae:0.0} s against {best.Name} {best.Score.Mae:0.0} s");
            }

            foreach (var b in new[] { 3, 4 }) // the issue's target: 20% below the delay carried forward at 5-10 and 10-15 min
            {
                Assert.True(card.Score("model", b).Mae <= 0.8 * card.Score("delay", b).Mae,
                    $"bucket {HorizonBucket.All[b].Name}: model {card.Score("model", b).Mae:0.0} s, delay carried forward {card.Score("delay", b).Mae:0.0} s");
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
