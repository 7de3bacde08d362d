using Fleet.Gtfs;
using Fleet.Predict.Evaluation;
using Fleet.Predict.Learning;
using Fleet.Predict.Online;
using Fleet.Predict.Predictors;

namespace Fleet.Predict.Offline;

/// <summary>One recorded day: the schedule replay (positions) and its ground truth.</summary>
/// <param name="Replay">The replay with the recording's events added.</param>
/// <param name="Actuals">Ground truth: truth.csv, the replay's detected arrivals, or a TripUpdates archive's observed events.</param>
/// <param name="TripsSkipped">Trips of the recording the static schedule does not know (not scored).</param>
public sealed record ReplayDay(OfflineReplay Replay, ActualStopTimes Actuals, int TripsSkipped = 0);

/// <summary>What <see cref="ArrivalPipeline.Evaluate"/> measured.</summary>
/// <param name="Scorecard">Every predictor's scores by horizon.</param>
/// <param name="RangeCoverage">Share of actual arrivals inside each predictor's p10-p90 range.</param>
/// <param name="TripsScored">Trips with at least one scored prediction.</param>
/// <param name="TripsSkipped">Trips of the recordings the static schedule does not know.</param>
public sealed record EvaluationResult(Scorecard Scorecard, IReadOnlyDictionary<string, double> RangeCoverage, int TripsScored, int TripsSkipped)
{
    /// <summary>The scorecard's JSON with <c>tripsScored</c> and <c>tripsSkipped</c> beside <c>predictors</c>.</summary>
    public string ToJson()
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(Scorecard.ToJson())!.AsObject();
        node["tripsScored"] = TripsScored;
        node["tripsSkipped"] = TripsSkipped;
        return node.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
    }
}

/// <summary>Progress of a pipeline phase.</summary>
/// <param name="Phase">What is running.</param>
/// <param name="Fraction">0 to 1.</param>
/// <param name="Detail">A short status, e.g. the validation loss.</param>
public readonly record struct PipelineProgress(string Phase, double Fraction, string Detail);

/// <summary>Options of <see cref="ArrivalPipeline.Train"/>.</summary>
public sealed record ArrivalTrainingOptions
{
    /// <summary>Options of the boosted trees.</summary>
    public GbtOptions Trees { get; init; } = new()
    {
        Loss = GbtLoss.Absolute,
        // Sized for the online budget (30 stops in under 50 µs): 150 trees at a high learning rate lose about 2% of
        // held-out MAE against 400 trees at 0.08 on the sample city, and cost under half as much.
        MaxTrees = 150,
        LearningRate = 0.2,
        MaxDepth = 6,
        MaxLeaves = 31,
        MinSamplesLeaf = 50,
        Subsample = 0.7,
        EarlyStoppingRounds = 30,
        Seed = 1,
    };

    /// <summary>Share of trips held out for early stopping, the blend and the model's p10-p90 bands.</summary>
    public double ValidationFraction { get; init; } = 0.2;

    /// <summary>The tree trainer (<see cref="TreeTrainers.Names"/>): our own <c>gbdt</c>, or ML.NET's <c>lightgbm</c> or <c>fasttree</c>.</summary>
    public string Trainer { get; init; } = TreeTrainers.Gbdt;

    /// <summary>Tree settings over the trainer's tuned ones; null for none.</summary>
    public TreeOverrides? Overrides { get; init; }

    /// <summary>
    /// Hold out the latest <see cref="ValidationFraction"/> of each day's event time instead of a share of its trips,
    /// so that early stopping and the blend see how the model does later than it learned (drift over the day).
    /// </summary>
    public bool ValidateOnLatest { get; init; }

    /// <summary>Fit the per-horizon blend with the baselines (<see cref="ModelBlend"/>); false keeps the trees alone.</summary>
    public bool Blend { get; init; } = true;

    /// <summary>The baselines the blend may move toward; null for all four.</summary>
    public IReadOnlyCollection<BlendBaseline>? BlendWith { get; init; }
}

/// <summary>The outcome of training.</summary>
/// <param name="Model">The model to save.</param>
/// <param name="Training">The tree trainer's report.</param>
/// <param name="TrainRows">Rows used for training.</param>
/// <param name="ValidationRows">Rows held out.</param>
/// <param name="ValidationMae">Model MAE (seconds) on the held-out rows.</param>
/// <param name="ValidationKalmanMae">Kalman baseline MAE on the same rows, for comparison.</param>
/// <param name="FitSeconds">Wall time of growing the trees (the rows built, before the blend).</param>
public sealed record ArrivalTrainingResult(
    ArrivalModel Model, GbtTrainingResult Training, int TrainRows, int ValidationRows, double ValidationMae, double ValidationKalmanMae,
    double FitSeconds);

/// <summary>
/// Offline training and evaluation: replays recorded days, builds the model's rows, trains, and scores every
/// predictor by horizon bucket.
/// </summary>
/// <remarks>
/// <para>Training cross-fits the historical profile: trips are split into two folds by a hash of the trip, and
/// each fold's rows use the profile built from the <em>other</em> fold, so a row's own running times never leak
/// into its historical features. The saved profile is built from all trips.</para>
/// <para>The target is actual arrival − (now + Kalman remaining time); rows with horizons outside 0-30 min are
/// skipped.</para>
/// </remarks>
public static class ArrivalPipeline
{
    private const double MaxHorizon = HorizonBucket.MaxHorizonSeconds;

    private static int Fold(TripKey key) => (int)(Mix((ulong)key.TripIndex) & 1);

    private static ulong Mix(ulong x)
    {
        unchecked
        {
            x += 0x9E3779B97F4A7C15UL;
            x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
            x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
            return x ^ (x >> 31);
        }
    }

    /// <summary>Trains an arrival model on recorded days.</summary>
    public static ArrivalTrainingResult Train(
        Schedule schedule, IReadOnlyList<ReplayDay> days, ArrivalTrainingOptions? options = null,
        Action<PipelineProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentNullException.ThrowIfNull(days);
        options ??= new ArrivalTrainingOptions();
        if (days.Count == 0)
        {
            throw new ArgumentException("no recorded days to train on", nameof(days));
        }

        var full = new HistoricalProfile();
        var foldProfiles = new HistoricalProfile[] { new(), new() };
        foreach (var day in days)
        {
            full.Merge(OfflineReplay.BuildProfile(schedule, day.Actuals));
            foldProfiles[0].Merge(OfflineReplay.BuildProfile(schedule, day.Actuals, k => Fold(k) == 0));
            foldProfiles[1].Merge(OfflineReplay.BuildProfile(schedule, day.Actuals, k => Fold(k) == 1));
        }

        var bound = new[] { ArrivalModel.BindProfile(foldProfiles[0], schedule), ArrivalModel.BindProfile(foldProfiles[1], schedule) };
        var baselineSets = new[] { new PredictorSet(bound[0]), new PredictorSet(bound[1]) };
        var train = new Dataset(ArrivalFeatures.Names, 1 << 16);
        var validation = new Dataset(ArrivalFeatures.Names, 1 << 14);
        var validationHorizon = new List<float>();
        var validationScale = new List<float>();
        var validationKalmanAbs = 0.0;
        var validationKalmanRemaining = new List<float>();
        var validationBaselineErrors = new List<double[]>();
        var baselineResiduals = new Dictionary<string, List<(double, double)>>(StringComparer.Ordinal);
        foreach (var p in baselineSets[0].All)
        {
            baselineResiduals[p.Name] = [];
        }

        var buffer = new ArrivalPrediction[DownstreamPlan.MaxStops];
        var splitSalt = options.Trees.Seed;
        for (var d = 0; d < days.Count; d++)
        {
            var day = days[d];
            var dayIndex = d;
            var rowBuffer = new float[ArrivalFeatures.Count];
            var (first, last) = day.Replay.SampleTimeRange;
            var validationFrom = first + ((1 - options.ValidationFraction) * (last - first));
            day.Replay.Run(
                day.Actuals,
                new LiveStatistics(),
                key => bound[1 - Fold(key)],
                point =>
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var ctx = point.Context;
                    var plan = ctx.Plan;
                    plan.Ensure(ctx, point.Profile);
                    var group = unchecked((int)Mix(((ulong)(uint)dayIndex << 40) ^ ((ulong)(uint)point.Actual.Key.TripIndex << 8) ^ (ulong)point.Actual.Key.ServiceDate.DayNumber));
                    var isValidation = options.ValidateOnLatest
                        ? ctx.NowUnix >= validationFrom
                        : (Mix(unchecked((ulong)(uint)group ^ splitSalt)) % 1000) < options.ValidationFraction * 1000;
                    for (var i = 0; i < plan.Count; i++)
                    {
                        var actual = point.Actual.Arrival[plan.First + i];
                        var horizon = actual - plan.Now;
                        if (double.IsNaN(actual) || horizon < 0 || horizon >= MaxHorizon)
                        {
                            continue;
                        }

                        ArrivalFeatures.Fill(ctx, plan, i, rowBuffer);
                        var target = (float)ModelPredictor.Target(plan, i, actual);
                        if (isValidation)
                        {
                            validation.Add(rowBuffer, target, group);
                            validationHorizon.Add((float)horizon);
                            validationScale.Add((float)ModelPredictor.Scale(plan, i));
                            validationKalmanAbs += Math.Abs(actual - (plan.Now + plan.CumKalman[i]));
                            validationKalmanRemaining.Add((float)plan.CumKalman[i]);
                            var errors = new double[4];
                            for (var b = 0; b < errors.Length; b++)
                            {
                                errors[b] = ModelBlend.BaselineArrival(ctx, plan, i, (BlendBaseline)b) - actual;
                            }

                            validationBaselineErrors.Add(errors);
                        }
                        else
                        {
                            train.Add(rowBuffer, target, group);
                        }
                    }

                    // Baseline bands from every point of the training days.
                    var set = baselineSets[1 - Fold(point.Actual.Key)];
                    foreach (var predictor in set.All)
                    {
                        var n = predictor.Predict(ctx, buffer);
                        var residuals = baselineResiduals[predictor.Name];
                        for (var i = 0; i < n; i++)
                        {
                            var actual = point.Actual.Arrival[buffer[i].StopTimeIndex];
                            if (!double.IsNaN(actual) && actual - plan.Now is >= 0 and < MaxHorizon)
                            {
                                residuals.Add((buffer[i].ArrivalUnix - plan.Now, actual - buffer[i].ArrivalUnix));
                            }
                        }
                    }
                },
                f => progress?.Invoke(new PipelineProgress($"replaying day {d + 1}/{days.Count}", f, $"{train.Rows + validation.Rows:N0} rows")));
        }

        if (train.Rows < 100 || validation.Rows < 20)
        {
            throw new InvalidOperationException(
                $"too little data to train: {train.Rows} training and {validation.Rows} validation rows (are the recording and the truth of the same city and day?)");
        }

        var trainer = TreeTrainers.Create(options.Trainer, options.Trees, options.Overrides);
        var fitClock = System.Diagnostics.Stopwatch.StartNew();
        var result = trainer.Fit(
            train,
            validation,
            new InlineProgress<GbtProgress>(g => progress?.Invoke(new PipelineProgress(
                "training", (double)g.Iteration / g.MaxIterations, $"tree {g.Iteration}, validation loss {g.ValidationLoss:0.0}"))),
            cancellationToken);
        var fitSeconds = fitClock.Elapsed.TotalSeconds;

        // The blend with the baselines, fitted on the held-out trips: where a baseline beats the trees, move toward it.
        var treeErrors = new double[validation.Rows];
        var blendRows = new List<BlendRow>(validation.Rows);
        for (var r = 0; r < validation.Rows; r++)
        {
            // predicted - actual of the trees, never before now (as the predictor writes it)
            treeErrors[r] = Math.Max(validationScale[r] * (result.Model.Predict(validation.Row(r)) - validation.Targets[r]), -validationHorizon[r]);
            blendRows.Add(new BlendRow(validationKalmanRemaining[r], treeErrors[r], validationBaselineErrors[r]));
        }

        var blend = options.Blend ? ModelBlend.Fit(blendRows, options.BlendWith) : ModelBlend.ModelOnly;

        // The model's bands and validation score on held-out trips (blended, as it predicts).
        var modelResiduals = new List<(double, double)>(validation.Rows);
        var mae = 0.0;
        for (var r = 0; r < validation.Rows; r++)
        {
            var rule = blend.RuleFor(validationKalmanRemaining[r]);
            var eb = validationBaselineErrors[r][(int)rule.Baseline];
            var error = eb + (rule.Weight * (treeErrors[r] - eb));
            var residual = -error; // actual - predicted
            mae += Math.Abs(residual);
            modelResiduals.Add((validationHorizon[r] - residual, residual));
        }

        var bands = new Dictionary<string, ResidualBands>(StringComparer.Ordinal) { ["model"] = ResidualBands.Measure(modelResiduals) };
        foreach (var (name, residuals) in baselineResiduals)
        {
            bands[name] = ResidualBands.Measure(residuals);
        }

        var description = $"{trainer.Name}, {days.Count} day(s), {train.Rows:N0} training rows, {validation.Rows:N0} validation rows, {result.BestIteration} trees; blend: {blend}";
        var model = new ArrivalModel(result.Model, full, bands, description, blend, trainer.Name);
        progress?.Invoke(new PipelineProgress("done", 1, description));
        return new ArrivalTrainingResult(model, result, train.Rows, validation.Rows, mae / validation.Rows, validationKalmanAbs / validation.Rows, fitSeconds);
    }

    /// <summary>Scores every predictor of <paramref name="predictors"/> on a recorded day.</summary>
    /// <returns>The scorecard and the share of actual arrivals inside each predictor's p10-p90 range.</returns>
    public static (Scorecard Scorecard, IReadOnlyDictionary<string, double> RangeCoverage) Evaluate(
        Schedule schedule, IReadOnlyList<ReplayDay> days, PredictorSet predictors, Action<PipelineProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var result = EvaluateDays(schedule, days, predictors, progress, cancellationToken);
        return (result.Scorecard, result.RangeCoverage);
    }

    /// <summary>Scores every predictor of <paramref name="predictors"/> on recorded days, counting the trips scored and skipped.</summary>
    public static EvaluationResult EvaluateDays(
        Schedule schedule, IReadOnlyList<ReplayDay> days, PredictorSet predictors, Action<PipelineProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentNullException.ThrowIfNull(days);
        ArgumentNullException.ThrowIfNull(predictors);
        var card = new Scorecard();
        var inside = new Dictionary<string, long>(StringComparer.Ordinal);
        var total = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var p in predictors.All)
        {
            card.AddPredictor(p.Name);
            inside[p.Name] = 0;
            total[p.Name] = 0;
        }

        var buffer = new ArrivalPrediction[DownstreamPlan.MaxStops];
        var scoredTrips = new HashSet<(int Day, TripKey Trip)>();
        for (var d = 0; d < days.Count; d++)
        {
            var day = days[d];
            var dayIndex = d;
            day.Replay.Run(
                day.Actuals,
                new LiveStatistics(),
                _ => predictors.Profile,
                point =>
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var now = point.Context.NowUnix;
                    foreach (var predictor in predictors.All)
                    {
                        var n = predictor.Predict(point.Context, buffer);
                        for (var i = 0; i < n; i++)
                        {
                            var actual = point.Actual.Arrival[buffer[i].StopTimeIndex];
                            if (double.IsNaN(actual))
                            {
                                continue;
                            }

                            if (card.Add(predictor.Name, actual - now, buffer[i].ArrivalUnix - actual))
                            {
                                scoredTrips.Add((dayIndex, point.Actual.Key));
                                total[predictor.Name]++;
                                if (actual >= buffer[i].P10Unix && actual <= buffer[i].P90Unix)
                                {
                                    inside[predictor.Name]++;
                                }
                            }
                        }
                    }
                },
                f => progress?.Invoke(new PipelineProgress($"evaluating day {d + 1}/{days.Count}", f, string.Empty)));
        }

        var coverage = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (name, n) in total)
        {
            coverage[name] = n == 0 ? double.NaN : (double)inside[name] / n;
        }

        return new EvaluationResult(card, coverage, scoredTrips.Count, days.Sum(d => d.TripsSkipped));
    }

    private sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
