using Fleet.Predict.Learning;
using Fleet.Predict.Online;
using Fleet.Predict.Predictors;
using Fleet.Predict.Tests.Learning;
using Microsoft.Extensions.Logging;

namespace Fleet.Predict.Tests.Online;

/// <summary>
/// Continuous learning on synthetic rows: target = a smooth function of two features (plus a little noise), so a
/// model trained on an hour of rows beats a weak one, and one trained on random labels loses to a good one.
/// Event time is passed explicitly; nothing here reads a clock.
/// </summary>
public sealed class ModelRetrainerTests
{
    private const double T0 = 1_772_438_400; // 2026-03-02 08:00 UTC
    private static readonly BoundProfile s_profile = new HistoricalProfile().Bind(_ => -1);

    private static float Truth(ReadOnlySpan<float> row) => (0.02f * row[0]) - (0.5f * row[3]) + (row[5] > 12 ? 1.5f : 0);

    private static float[] Row(TestRng rng)
    {
        var row = new float[ArrivalFeatures.Count];
        for (var c = 0; c < row.Length; c++)
        {
            row[c] = (float)(rng.NextDouble() * 24);
        }

        return row;
    }

    private static ModelPredictor Model(int trees, int rows, ulong seed)
    {
        var rng = new TestRng(seed);
        var data = new Dataset(ArrivalFeatures.Names, rows);
        for (var i = 0; i < rows; i++)
        {
            var row = Row(rng);
            data.Add(row, Truth(row) + (float)(0.1 * rng.NextGaussian()), i);
        }

        var gbt = new GbtTrainer(new GbtOptions { MaxTrees = trees, MinSamplesLeaf = 5 }).FitT(data).Model;
        return new ModelPredictor(gbt, s_profile);
    }

    /// <summary>Adds <paramref name="rows"/> rows spread over [from, from + span) of event time, 20 rows a trip.</summary>
    private static void Feed(ModelRetrainer retrainer, int rows, double from, double span, ulong seed, bool garbageTraining = false)
    {
        var rng = new TestRng(seed);
        for (var i = 0; i < rows; i++)
        {
            var row = Row(rng);
            var group = (int)(seed * 100_000) + (i / 20);
            var target = garbageTraining && !retrainer.IsValidationGroup(group)
                ? (float)(rng.NextDouble() * 200) - 100
                : Truth(row) + (float)(0.1 * rng.NextGaussian());
            retrainer.Add(row, target, 2, 300, group, from + (span * i / rows));
        }
    }

    private static RetrainingOptions Options(int maxRows = 50_000) => new()
    {
        Every = TimeSpan.FromHours(1),
        MinRows = 500,
        MaxRows = maxRows,
        Trees = new GbtOptions { MaxTrees = 40, MinSamplesLeaf = 10, EarlyStoppingRounds = 10 },
    };

    [Fact]
    public void OnEventTime_AfterAnHour_RetrainsAndSwapsTheBetterModelLoggingBothScores()
    {
        var weak = Model(trees: 2, rows: 200, seed: 1);
        var log = new ListLogger();
        var retrainer = new ModelRetrainer(weak, Options(), log, job => job());
        retrainer.OnEventTime(T0);
        Feed(retrainer, 4000, T0, 3500, seed: 2);

        Assert.False(retrainer.OnEventTime(T0 + 3599), "a retrain started before an hour of event time");
        Assert.Equal(0, retrainer.Retrains);
        Assert.True(retrainer.OnEventTime(T0 + 3600), "no retrain after an hour of event time");

        Assert.True(retrainer.Running.IsCompleted); // the test's starter ran the job inline
        Assert.Equal(1, retrainer.Retrains);
        Assert.Equal(1, retrainer.Swaps);
        Assert.NotSame(weak, retrainer.Current);
        var last = retrainer.Last!;
        Assert.True(last.NewMae < last.OldMae, $"new MAE {last.NewMae} not below old {last.OldMae}");
        Assert.Equal("swapped", last.Reason);
        var swap = Assert.Single(log.Entries, e => e.Id == 4010);
        Assert.Contains(last.OldMae.ToString("F2", System.Globalization.CultureInfo.InvariantCulture), swap.Message, StringComparison.Ordinal);
        Assert.Contains(last.NewMae.ToString("F2", System.Globalization.CultureInfo.InvariantCulture), swap.Message, StringComparison.Ordinal);

        // The next one is due an hour after this one, not after the first event.
        Assert.False(retrainer.OnEventTime(T0 + 7199));
        Assert.Equal(1, retrainer.Retrains);
    }

    [Theory]
    [InlineData(TreeTrainers.LightGbm)]
    [InlineData(TreeTrainers.FastTree)]
    public void OnEventTime_WithAnMlNetTrainer_RetrainsAndSwapsKeepingTheBlend(string trainer)
    {
        var weak = Model(trees: 2, rows: 200, seed: 1);
        var blend = new ModelBlend([.. ModelBlend.EdgesMinutes.Select(_ => new BlendRule(BlendBaseline.Kalman, 0.5))]);
        weak = new ModelPredictor(weak.Gbt, s_profile, null, blend);
        var retrainer = new ModelRetrainer(weak, Options() with { Trainer = trainer }, new ListLogger(), job => job());
        retrainer.OnEventTime(T0);
        Feed(retrainer, 4000, T0, 3500, seed: 2);

        Assert.True(retrainer.OnEventTime(T0 + 3600));

        Assert.Equal(1, retrainer.Swaps);
        Assert.True(retrainer.Last!.NewMae < retrainer.Last.OldMae, $"{trainer}: new MAE {retrainer.Last.NewMae} not below old {retrainer.Last.OldMae}");
        Assert.Same(blend, retrainer.Current.Blend);
    }

    [Fact]
    public void Create_UnknownTrainer_FailsAtConstructionNotInTheBackground()
    {
        var weak = Model(trees: 2, rows: 200, seed: 1);

        Assert.Throws<ArgumentException>(() => new ModelRetrainer(weak, Options() with { Trainer = "nope" }));
    }

    [Fact]
    public void OnEventTime_ModelTrainedOnGarbageLabels_NotSwappedIn()
    {
        var good = Model(trees: 60, rows: 4000, seed: 3);
        var log = new ListLogger();
        var retrainer = new ModelRetrainer(good, Options(), log, job => job());
        retrainer.OnEventTime(T0);
        Feed(retrainer, 4000, T0, 3500, seed: 4, garbageTraining: true);

        Assert.True(retrainer.OnEventTime(T0 + 3600));

        Assert.Equal(1, retrainer.Retrains);
        Assert.Equal(0, retrainer.Swaps);
        Assert.Same(good, retrainer.Current);
        var last = retrainer.Last!;
        Assert.Equal("worse", last.Reason);
        Assert.True(last.NewMae >= last.OldMae, $"garbage model MAE {last.NewMae} vs current {last.OldMae}");
        Assert.Single(log.Entries, e => e.Id == 4011);
    }

    [Fact]
    public async Task OnEventTime_WhileTrainingIsHeld_IngestGoesOnWithoutWaiting()
    {
        var weak = Model(trees: 2, rows: 200, seed: 5);
        using var gate = new ManualResetEventSlim(false);
        var retrainer = new ModelRetrainer(weak, Options(), null, job => new Thread(() =>
        {
            gate.Wait(); // the training job cannot run until the test says so
            job();
        }) { IsBackground = true }.Start());
        retrainer.OnEventTime(T0);
        Feed(retrainer, 3000, T0, 3500, seed: 6);
        Assert.True(retrainer.OnEventTime(T0 + 3600));

        // Ingest goes on while the retrain is held at the gate: rows are added, event time advances (the next due
        // retrain is skipped, not queued behind the running one), and predictions read the current model.
        var ingest = Task.Run(() =>
        {
            Feed(retrainer, 2000, T0 + 3600, 3600, seed: 7);
            Assert.False(retrainer.OnEventTime(T0 + 7200));
            Assert.Same(weak, retrainer.Current);
        }, TestContext.Current.CancellationToken);
        await Within(ingest, "ingest (rows, event time, predictions) while the retrain was held at its gate");
        Assert.False(retrainer.Running.IsCompleted, "the held retrain finished before the gate opened");
        Assert.Equal(0, retrainer.Retrains);
        Assert.Equal(1, retrainer.Skipped);
        Assert.Equal(5000, retrainer.AddedRows);

        gate.Set();
        await Within(retrainer.Running, "the retrain after its gate opened");
        Assert.Equal(1, retrainer.Retrains);
        Assert.Equal(1, retrainer.Swaps);
        Assert.NotSame(weak, retrainer.Current);
    }

    [Fact]
    public void Add_BeyondTheCap_DropsTheOldestAndCountsThem()
    {
        var retrainer = new ModelRetrainer(Model(trees: 2, rows: 200, seed: 8), Options(maxRows: 100), null, job => job());

        Feed(retrainer, 150, T0, 150, seed: 9);

        Assert.Equal(100, retrainer.WindowRows);
        Assert.Equal(50, retrainer.DroppedRows);
        Assert.Equal(150, retrainer.AddedRows);
    }

    [Fact]
    public void OnEventTime_RetrainEveryZero_NeverRetrains()
    {
        var retrainer = new ModelRetrainer(Model(trees: 2, rows: 200, seed: 10), Options() with { Every = TimeSpan.Zero }, null, job => job());
        Feed(retrainer, 1000, T0, 3500, seed: 11);

        Assert.False(retrainer.OnEventTime(T0));
        Assert.False(retrainer.OnEventTime(T0 + (24 * 3600)));
        Assert.Equal(0, retrainer.Retrains);
    }

    [Fact]
    public void OnEventTime_TooFewRows_SkippedAndCounted()
    {
        var weak = Model(trees: 2, rows: 200, seed: 12);
        var retrainer = new ModelRetrainer(weak, Options(), null, job => job());
        retrainer.OnEventTime(T0);
        Feed(retrainer, 100, T0, 3500, seed: 13);

        Assert.False(retrainer.OnEventTime(T0 + 3600));

        Assert.Equal(1, retrainer.Skipped);
        Assert.Equal(0, retrainer.Retrains);
        Assert.Same(weak, retrainer.Current);
    }

    /// <summary>Awaits <paramref name="task"/> with a generous deadline (only reached on failure), naming what was awaited.</summary>
    private static async Task Within(Task task, string what)
    {
        try
        {
            await task.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"{what} did not finish within 60 s");
        }
    }

    /// <summary>Collects log entries (event id and formatted message).</summary>
    private sealed class ListLogger : ILogger
    {
        private readonly Lock _lock = new();
        private readonly List<(int Id, string Message)> _entries = [];

        public IReadOnlyList<(int Id, string Message)> Entries
        {
            get
            {
                lock (_lock)
                {
                    return [.. _entries];
                }
            }
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_lock)
            {
                _entries.Add((eventId.Id, formatter(state, exception)));
            }
        }
    }
}
