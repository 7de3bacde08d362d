using Fleet.Gtfs;
using Fleet.Predict.Evaluation;
using Fleet.Predict.Offline;
using Fleet.Simulation;

namespace Fleet.Predict.Tests.Blend;

public sealed class ModelBlendTests
{
    private static BlendRow Row(double horizon, double model, double schedule, double delay, double historical, double kalman) =>
        new(horizon, model, [schedule, delay, historical, kalman]);

    [Fact]
    public void Fit_BaselineBetterInABucket_MovesTowardIt_ElsewhereModelAlone()
    {
        var rows = new List<BlendRow>();
        var rng = new Random(7);
        for (var i = 0; i < 2_000; i++)
        {
            // 0-1 min: the model is noisy (±20 s), Kalman is exact; 5-10 min: the model is exact, the baselines off.
            rows.Add(Row(30, (rng.NextDouble() - 0.5) * 40, 50, 40, 10, 0));
            rows.Add(Row(400, 0, 80, 60, 30, 20));
        }

        var blend = ModelBlend.Fit(rows);

        Assert.Equal(new BlendRule(BlendBaseline.Kalman, 0), blend.Rules[ModelBlend.BandOf(30)]);
        Assert.Equal(new BlendRule(BlendBaseline.Kalman, 1), blend.Rules[ModelBlend.BandOf(400)]);
        Assert.Equal(new BlendRule(BlendBaseline.Kalman, 1), blend.Rules[ModelBlend.BandOf(100)]); // no rows: the model alone
        Assert.Contains("0.5-1 min: kalman", blend.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Fit_ErrorsOfOppositeSign_FindsTheMixture()
    {
        // The model is 10 s late and the historical baseline 10 s early on every row: the even mix is exact.
        var rows = Enumerable.Range(0, 500).Select(_ => Row(200, 10, 99, 99, -10, 50)).ToList();

        var rule = ModelBlend.Fit(rows).RuleFor(200);

        Assert.Equal(BlendBaseline.Historical, rule.Baseline);
        Assert.Equal(0.5, rule.Weight, 6);
    }

    [Fact]
    public void WriteRead_RoundTrip_AndOutOfRangeRejected()
    {
        var blend = new ModelBlend([.. ModelBlend.EdgesMinutes.Select((_, i) => new BlendRule((BlendBaseline)(i % 4), i / 20.0))]);
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            blend.Write(w);
        }

        var bytes = stream.ToArray();
        Assert.Equal(blend.Rules, ModelBlend.Read(new BinaryReader(new MemoryStream(bytes))).Rules);

        bytes[4] = 9; // the first rule's baseline
        var e = Assert.Throws<InvalidDataException>(() => ModelBlend.Read(new BinaryReader(new MemoryStream(bytes))));
        Assert.Contains("out of range", e.Message, StringComparison.Ordinal);
    }
}

/// <summary>
/// The case: a generated city the model was not tuned on (city 3, 60 vehicles, 3 h), trained on the day
/// with seed 60616 and scored on the day with seed 60617, where the trees alone lost to the Kalman filter in the
/// first minute. The model (trees blended per horizon) must be at least as good as the best baseline in every bucket.
/// </summary>
public sealed class NeverWorseThanBaselineTests(ITestOutputHelper log) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("fleet-city3-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void City3_UnseenDay_ModelAtLeastAsGoodAsBestBaselineInEveryBucket()
    {
        var ct = TestContext.Current.CancellationToken;
        var days = new List<string>();
        foreach (var seed in new ulong[] { 60616, 60617 })
        {
            var folder = Path.Combine(_dir, $"s{seed}");
            CityGenerator.Generate(new GenerateOptions { City = 3, Seed = seed, Vehicles = 60, Hours = 3 }, folder);
            days.Add(folder);
        }

        var schedule = GtfsLoader.Load(Path.Combine(days[0], "gtfs.zip"));
        List<ReplayDay> Read(string folder) => RecordedDays.ReadHfp(
            schedule, [Path.Combine(folder, "recording.hfp.gz")], [Path.Combine(folder, "truth.csv")], new ReplayOptions(), null, null, ct);

        var model = ArrivalPipeline.Train(schedule, Read(days[0]), cancellationToken: ct).Model;
        var (card, _) = ArrivalPipeline.Evaluate(schedule, Read(days[1]), model.Bind(schedule), cancellationToken: ct);

        log.WriteLine($"blend: {model.Blend}");
        log.WriteLine(card.ToTable());
        for (var b = 0; b < HorizonBucket.All.Count; b++)
        {
            var m = card.Score("model", b);
            var best = new[] { "schedule", "delay", "historical", "kalman" }.Select(p => (Name: p, Score: card.Score(p, b))).MinBy(p => p.Score.Mae);
            Assert.True(m.N >= 50, $"bucket {HorizonBucket.All[b].Name}: {m.N} predictions");
            Assert.True(m.Mae <= best.Score.Mae,
                $"bucket {HorizonBucket.All[b].Name}: model MAE {m.Mae:0.000} s against {best.Name} {best.Score.Mae:0.000} s");
        }
    }
}
