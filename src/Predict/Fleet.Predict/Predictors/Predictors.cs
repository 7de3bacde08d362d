using Fleet.Predict.Learning;
using Fleet.Predict.Online;

namespace Fleet.Predict.Predictors;

/// <summary>Shared machinery: build the context's downstream plan, then one point per stop plus its band.</summary>
/// <remarks>Immutable; thread-safe (per-vehicle state is in the context).</remarks>
public abstract class PlanPredictor : IArrivalPredictor
{
    /// <summary>Creates a predictor over a bound profile with residual bands.</summary>
    protected PlanPredictor(BoundProfile profile, ResidualBands? bands)
    {
        ArgumentNullException.ThrowIfNull(profile);
        Profile = profile;
        Bands = bands ?? ResidualBands.Default;
    }

    /// <inheritdoc />
    public abstract string Name { get; }

    /// <summary>The historical profile.</summary>
    public BoundProfile Profile { get; }

    /// <summary>The p10/p90 residual bands.</summary>
    public ResidualBands Bands { get; }

    /// <inheritdoc />
    public int Predict(PredictionContext context, Span<ArrivalPrediction> output)
    {
        ArgumentNullException.ThrowIfNull(context);
        var plan = context.Plan;
        plan.Ensure(context, Profile);
        var n = Math.Min(output.Length, plan.Count);
        Points(context, plan, n, output);
        for (var i = 0; i < n; i++)
        {
            var p = output[i].ArrivalUnix;
            var (lo, hi) = Bands.At(p - plan.Now);
            output[i] = new ArrivalPrediction(plan.First + i, plan.StopIndex[i], p, p + lo, p + hi);
        }

        return n;
    }

    /// <summary>Writes the point predictions (Unix seconds) of the first <paramref name="n"/> rows into <c>ArrivalUnix</c>.</summary>
    private protected abstract void Points(PredictionContext context, DownstreamPlan plan, int n, Span<ArrivalPrediction> output);

    private protected static void Write(Span<ArrivalPrediction> output, int i, double arrival, double now) =>
        output[i] = new ArrivalPrediction(0, 0, Math.Max(arrival, now), 0, 0);
}

/// <summary>The timetable: arrival = scheduled arrival.</summary>
public sealed class SchedulePredictor(BoundProfile profile, ResidualBands? bands = null) : PlanPredictor(profile, bands)
{
    /// <inheritdoc />
    public override string Name => "schedule";

    private protected override void Points(PredictionContext context, DownstreamPlan plan, int n, Span<ArrivalPrediction> output)
    {
        for (var i = 0; i < n; i++)
        {
            Write(output, i, plan.SchedArrival[i], plan.Now);
        }
    }
}

/// <summary>Current delay carried forward, as GTFS-Realtime consumers do: arrival = scheduled + current delay.</summary>
public sealed class DelayPredictor(BoundProfile profile, ResidualBands? bands = null) : PlanPredictor(profile, bands)
{
    /// <inheritdoc />
    public override string Name => "delay";

    private protected override void Points(PredictionContext context, DownstreamPlan plan, int n, Span<ArrivalPrediction> output)
    {
        for (var i = 0; i < n; i++)
        {
            Write(output, i, plan.SchedArrival[i] + context.DelaySeconds, plan.Now);
        }
    }
}

/// <summary>Historical average running time per segment and time-of-day bucket, plus historical dwells.</summary>
public sealed class HistoricalPredictor(BoundProfile profile, ResidualBands? bands = null) : PlanPredictor(profile, bands)
{
    /// <inheritdoc />
    public override string Name => "historical";

    private protected override void Points(PredictionContext context, DownstreamPlan plan, int n, Span<ArrivalPrediction> output)
    {
        for (var i = 0; i < n; i++)
        {
            Write(output, i, plan.Now + plan.CumHist[i], plan.Now);
        }
    }
}

/// <summary>
/// A per-segment Kalman filter in the style of TheTransitClock: each segment's estimate combines the historical
/// average with the last vehicle's running time on it, weighted by their variances.
/// </summary>
public sealed class KalmanPredictor(BoundProfile profile, ResidualBands? bands = null) : PlanPredictor(profile, bands)
{
    /// <inheritdoc />
    public override string Name => "kalman";

    private protected override void Points(PredictionContext context, DownstreamPlan plan, int n, Span<ArrivalPrediction> output)
    {
        for (var i = 0; i < n; i++)
        {
            Write(output, i, plan.Now + plan.CumKalman[i], plan.Now);
        }
    }
}

/// <summary>
/// The gradient-boosted model: arrival = now + Kalman remaining time + the model's correction, where the model
/// was trained on <see cref="ArrivalFeatures"/> to predict actual − (now + Kalman remaining).
/// </summary>
public sealed class ModelPredictor : PlanPredictor
{
    private readonly GbtModel _model;

    /// <summary>Creates the model predictor.</summary>
    /// <param name="model">The trees.</param>
    /// <param name="profile">The historical profile.</param>
    /// <param name="bands">The p10/p90 residual bands.</param>
    /// <param name="blend">Per horizon, how the trees' prediction is blended with a baseline; null for the trees alone.</param>
    public ModelPredictor(GbtModel model, BoundProfile profile, ResidualBands? bands = null, ModelBlend? blend = null)
        : base(profile, bands)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.FeatureCount != ArrivalFeatures.Count)
        {
            throw new ArgumentException($"the model has {model.FeatureCount} features; this build computes {ArrivalFeatures.Count}");
        }

        _model = model;
        Blend = blend ?? ModelBlend.ModelOnly;
    }

    /// <inheritdoc />
    public override string Name => "model";

    /// <summary>How the trees' prediction is blended with the baselines, by horizon.</summary>
    public ModelBlend Blend { get; }

    /// <summary>The trees.</summary>
    public GbtModel Gbt => _model;

    /// <summary>
    /// The model's rows for the context's downstream stops (what <see cref="PlanPredictor.Predict"/> evaluates), for
    /// learning online: row i's features go to <paramref name="features"/> (row-major), the Kalman point the trees
    /// correct to <paramref name="baseUnix"/>, the target scale to <paramref name="scale"/>. Label a row with an
    /// observed arrival as <c>(actual − baseUnix[i]) / scale[i]</c>. Returns the rows written;
    /// <paramref name="firstStopTimeIndex"/> is the stop-time index of row 0.
    /// </summary>
    public int CaptureRows(PredictionContext context, Span<float> features, Span<double> baseUnix, Span<float> scale, out int firstStopTimeIndex)
    {
        ArgumentNullException.ThrowIfNull(context);
        var plan = context.Plan;
        plan.Ensure(context, Profile);
        var columns = ArrivalFeatures.Count;
        var n = Math.Min(Math.Min(plan.Count, baseUnix.Length), Math.Min(scale.Length, features.Length / columns));
        for (var i = 0; i < n; i++)
        {
            ArrivalFeatures.Fill(context, plan, i, features.Slice(i * columns, columns));
            baseUnix[i] = plan.Now + plan.CumKalman[i];
            scale[i] = (float)Scale(plan, i);
        }

        firstStopTimeIndex = plan.First;
        return n;
    }

    private protected override void Points(PredictionContext context, DownstreamPlan plan, int n, Span<ArrivalPrediction> output)
    {
        // All rows first, then the trees tree-major over the rows (see GbtModel.PredictMany).
        var columns = ArrivalFeatures.Count;
        Span<float> rows = stackalloc float[DownstreamPlan.MaxStops * ArrivalFeatures.Count];
        Span<double> corrections = stackalloc double[DownstreamPlan.MaxStops];
        for (var i = 0; i < n; i++)
        {
            ArrivalFeatures.Fill(context, plan, i, rows.Slice(i * columns, columns));
        }

        _model.PredictMany(rows, n, corrections);
        var blend = Blend;
        for (var i = 0; i < n; i++)
        {
            var trees = Math.Max(plan.Now + plan.CumKalman[i] + (Scale(plan, i) * corrections[i]), plan.Now);
            Write(output, i, blend.Apply(context, plan, i, trees), plan.Now);
        }
    }

    /// <summary>
    /// The target the model learns for a row: (actual arrival − (now + Kalman remaining)) / scale, where the scale
    /// grows with the square root of the remaining time. Dividing makes a 10 s miss one minute out weigh as much
    /// as a 50 s miss half an hour out, so the trees do not neglect short horizons, where errors are small.
    /// </summary>
    internal static double Target(DownstreamPlan plan, int i, double actualUnix) =>
        (actualUnix - (plan.Now + plan.CumKalman[i])) / Scale(plan, i);

    /// <summary>The target scale of a row: √(max(remaining, 30 s) / 30 s).</summary>
    internal static double Scale(DownstreamPlan plan, int i) => Math.Sqrt(Math.Max(plan.CumKalman[i], 30) / 30);
}
