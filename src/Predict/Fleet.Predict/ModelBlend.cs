using System.Globalization;

namespace Fleet.Predict;

/// <summary>The baselines the model's prediction can be blended with (see <see cref="ModelBlend"/>).</summary>
public enum BlendBaseline : byte
{
    /// <summary>The timetable.</summary>
    Schedule = 0,

    /// <summary>The current delay carried forward.</summary>
    Delay = 1,

    /// <summary>Historical running and dwell times.</summary>
    Historical = 2,

    /// <summary>The Kalman filter (the point the trees correct).</summary>
    Kalman = 3,
}

/// <summary>One horizon bucket's rule: prediction = baseline + weight × (model − baseline).</summary>
/// <param name="Baseline">The baseline blended with.</param>
/// <param name="Weight">0 (the baseline alone) to 1 (the model alone).</param>
public readonly record struct BlendRule(BlendBaseline Baseline, double Weight);

/// <summary>
/// Keeps the model from being worse than the best baseline: per horizon band (the Kalman estimate of the time to
/// the stop, in <see cref="EdgesMinutes"/>: finer than the reporting buckets, so that a band's rows are scored in
/// mostly one reporting bucket), the model's prediction is blended with the
/// baseline and weight that scored best on the held-out trips at training time. Where the trees help, the rule is
/// the model alone; where a baseline is better (e.g. the Kalman filter in the first minute), the prediction moves
/// toward it, down to the baseline itself.
/// </summary>
/// <remarks>Immutable; thread-safe.</remarks>
public sealed class ModelBlend
{
    /// <summary>How much lower (relative) a blend with another baseline than the Kalman filter must score to be chosen.</summary>
    public const double OtherBaselineMargin = 0.005;

    /// <summary>Fewest held-out rows in a bucket for its rule to be fitted; fewer keep the model alone.</summary>
    public const int MinRowsPerBucket = 200;

    private static readonly string[] s_names = ["schedule", "delay", "historical", "kalman"];
    private readonly BlendRule[] _rules;

    /// <summary>The upper ends of the horizon bands, in minutes of the Kalman remaining time (the last is 30).</summary>
    public static IReadOnlyList<double> EdgesMinutes { get; } = [0.5, 1, 1.5, 2, 3, 4, 5, 7.5, 10, 12.5, 15, 20, 25, 30];

    /// <summary>The band of a Kalman remaining time in seconds (below zero: the first; beyond 30 min: the last).</summary>
    public static int BandOf(double kalmanRemainingSeconds)
    {
        var minutes = kalmanRemainingSeconds / 60;
        for (var i = 0; i < EdgesMinutes.Count; i++)
        {
            if (minutes < EdgesMinutes[i])
            {
                return i;
            }
        }

        return EdgesMinutes.Count - 1;
    }

    /// <summary>Creates a blend from one rule per band of <see cref="EdgesMinutes"/>.</summary>
    public ModelBlend(IReadOnlyList<BlendRule> rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        if (rules.Count != EdgesMinutes.Count)
        {
            throw new ArgumentException($"a blend needs {EdgesMinutes.Count} rules, got {rules.Count}", nameof(rules));
        }

        foreach (var r in rules)
        {
            if (!(r.Weight is >= 0 and <= 1) || !Enum.IsDefined(r.Baseline))
            {
                throw new ArgumentException($"invalid blend rule {r}", nameof(rules));
            }
        }

        _rules = [.. rules];
    }

    /// <summary>The model alone in every bucket (models trained before blends existed).</summary>
    public static ModelBlend ModelOnly { get; } = new([.. EdgesMinutes.Select(_ => new BlendRule(BlendBaseline.Kalman, 1))]);

    /// <summary>The rules, one per band of <see cref="EdgesMinutes"/>.</summary>
    public IReadOnlyList<BlendRule> Rules => _rules;

    /// <summary>True when every rule is the model alone.</summary>
    public bool IsModelOnly => _rules.All(r => r.Weight >= 1);

    /// <summary>The name of a baseline as predictors and reports use it.</summary>
    public static string NameOf(BlendBaseline baseline) => s_names[(int)baseline];

    /// <summary>The rule for a row whose Kalman estimate of the remaining time is <paramref name="kalmanRemainingSeconds"/>.</summary>
    public BlendRule RuleFor(double kalmanRemainingSeconds) => _rules[BandOf(kalmanRemainingSeconds)];

    /// <summary>Applies the rule of row <paramref name="i"/> to the model's arrival (Unix seconds).</summary>
    internal double Apply(PredictionContext context, DownstreamPlan plan, int i, double modelArrivalUnix)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(plan);
        var rule = RuleFor(plan.CumKalman[i]);
        if (rule.Weight >= 1)
        {
            return modelArrivalUnix;
        }

        var baseline = BaselineArrival(context, plan, i, rule.Baseline);
        return baseline + (rule.Weight * (modelArrivalUnix - baseline));
    }

    /// <summary>A baseline's arrival for row <paramref name="i"/>, as its predictor writes it (never before now).</summary>
    internal static double BaselineArrival(PredictionContext context, DownstreamPlan plan, int i, BlendBaseline baseline)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(plan);
        var arrival = baseline switch
        {
            BlendBaseline.Schedule => plan.SchedArrival[i],
            BlendBaseline.Delay => plan.SchedArrival[i] + context.DelaySeconds,
            BlendBaseline.Historical => plan.Now + plan.CumHist[i],
            _ => plan.Now + plan.CumKalman[i],
        };
        return Math.Max(arrival, plan.Now);
    }

    /// <summary>
    /// Fits the rules on held-out rows: per band of the Kalman remaining time, the weight (a grid of 0, 0.05, ..., 1)
    /// toward the Kalman point with the lowest mean absolute error, or, when one scores at least
    /// <see cref="OtherBaselineMargin"/> lower, another baseline and weight; bands with fewer than
    /// <see cref="MinRowsPerBucket"/> rows keep the model alone. Ties go to the model alone.
    /// </summary>
    /// <param name="rows">Per held-out row: the Kalman remaining time, the model's error and each baseline's error
    /// (predicted − actual, seconds, in <see cref="BlendBaseline"/> order).</param>
    /// <param name="candidates">The baselines the model may be blended with; null for all four.</param>
    public static ModelBlend Fit(IReadOnlyList<BlendRow> rows, IReadOnlyCollection<BlendBaseline>? candidates = null)
    {
        ArgumentNullException.ThrowIfNull(rows);
        const int steps = 20;
        var buckets = EdgesMinutes.Count;
        var baselines = s_names.Length;
        // sums[bucket, baseline, step] of |error|
        var sums = new double[buckets, baselines, steps + 1];
        var counts = new int[buckets];
        foreach (var row in rows)
        {
            var b = BandOf(row.KalmanRemainingSeconds);
            counts[b]++;
            for (var k = 0; k < baselines; k++)
            {
                var eb = row.BaselineErrors[k];
                for (var s = 0; s <= steps; s++)
                {
                    var w = (double)s / steps;
                    sums[b, k, s] += Math.Abs(eb + (w * (row.ModelError - eb)));
                }
            }
        }

        var rules = new BlendRule[buckets];
        for (var b = 0; b < buckets; b++)
        {
            rules[b] = new BlendRule(BlendBaseline.Kalman, 1);
            if (counts[b] < MinRowsPerBucket)
            {
                continue;
            }

            // First the trees' own base: shrink the correction toward the Kalman point where that scores better.
            var kalman = (int)BlendBaseline.Kalman;
            var best = sums[b, kalman, steps];
            for (var s = steps - 1; s >= 0; s--)
            {
                if (sums[b, kalman, s] < best - 1e-9)
                {
                    best = sums[b, kalman, s];
                    rules[b] = new BlendRule(BlendBaseline.Kalman, (double)s / steps);
                }
            }

            // Another baseline only when it is clearly better (1% of the held-out MAE): a rule that wins by less on
            // one day's held-out trips does not carry to the next day.
            var bar = best * (1 - OtherBaselineMargin);
            for (var k = 0; k < baselines; k++)
            {
                if (k == kalman || (candidates is not null && !candidates.Contains((BlendBaseline)k)))
                {
                    continue;
                }

                for (var s = steps - 1; s >= 0; s--)
                {
                    if (sums[b, k, s] < bar - 1e-9)
                    {
                        bar = sums[b, k, s];
                        rules[b] = new BlendRule((BlendBaseline)k, (double)s / steps);
                    }
                }
            }
        }

        return new ModelBlend(rules);
    }

    /// <summary>Writes the rules.</summary>
    public void Write(BinaryWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.Write(_rules.Length);
        foreach (var r in _rules)
        {
            writer.Write((byte)r.Baseline);
            writer.Write(r.Weight);
        }
    }

    /// <summary>Reads rules written by <see cref="Write"/>.</summary>
    /// <exception cref="InvalidDataException">The rules do not fit this build's horizon buckets or are out of range.</exception>
    public static ModelBlend Read(BinaryReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var n = reader.ReadInt32();
        if (n != EdgesMinutes.Count)
        {
            throw new InvalidDataException($"the blend has {n} horizon bands; this build has {EdgesMinutes.Count}");
        }

        var rules = new BlendRule[n];
        for (var i = 0; i < n; i++)
        {
            var baseline = reader.ReadByte();
            var weight = reader.ReadDouble();
            if (baseline >= s_names.Length || !(weight is >= 0 and <= 1))
            {
                throw new InvalidDataException($"blend rule {i} is out of range (baseline {baseline}, weight {weight})");
            }

            rules[i] = new BlendRule((BlendBaseline)baseline, weight);
        }

        return new ModelBlend(rules);
    }

    /// <summary>The rules for humans, e.g. <c>0-0.5 min: 0.60 model + 0.40 kalman; 0.5-1 min: model</c>.</summary>
    public override string ToString() => string.Join("; ", _rules.Select((r, i) => string.Create(
        CultureInfo.InvariantCulture,
        $"{(i == 0 ? 0 : EdgesMinutes[i - 1])}-{EdgesMinutes[i]} min: {(r.Weight >= 1 ? "model" : r.Weight <= 0 ? NameOf(r.Baseline) : $"{r.Weight:0.00} model + {1 - r.Weight:0.00} {NameOf(r.Baseline)}")}")));
}

/// <summary>A held-out row for <see cref="ModelBlend.Fit"/>.</summary>
/// <param name="KalmanRemainingSeconds">The Kalman estimate of the time to the stop at prediction time.</param>
/// <param name="ModelError">The model's predicted − actual, seconds.</param>
/// <param name="BaselineErrors">Each baseline's predicted − actual, in <see cref="BlendBaseline"/> order.</param>
public readonly record struct BlendRow(double KalmanRemainingSeconds, double ModelError, double[] BaselineErrors);
