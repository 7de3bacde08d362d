using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Fleet.Predict.Evaluation;

/// <summary>The scores of one predictor in one horizon bucket.</summary>
/// <param name="Mae">Mean absolute error, seconds.</param>
/// <param name="Rmse">Root mean squared error, seconds.</param>
/// <param name="P90">90th percentile of the absolute error, seconds (linear interpolation between order statistics).</param>
/// <param name="CalItp">Share of predictions inside the Cal-ITP band (<see cref="Evaluation.CalItp"/>), 0 to 1.</param>
/// <param name="Bias">Mean of predicted − actual, seconds (positive: predictions too late).</param>
/// <param name="N">Number of predictions scored.</param>
public readonly record struct BucketScore(double Mae, double Rmse, double P90, double CalItp, double Bias, int N);

/// <summary>
/// Collects prediction errors per predictor and horizon bucket, and computes MAE, RMSE, p90 |error| and the Cal-ITP
/// accuracy share. Error = predicted − actual, in seconds.
/// </summary>
/// <remarks>Not thread-safe. Predictors are reported in the order first seen.</remarks>
public sealed class Scorecard
{
    private readonly List<string> _order = [];
    private readonly Dictionary<string, Accumulator[]> _byPredictor = new(StringComparer.Ordinal);

    private sealed class Accumulator
    {
        public List<float> AbsErrors { get; } = [];
        public double SumError;
        public double SumSquares;
        public int Accurate;
    }

    /// <summary>Predictors seen so far, in order.</summary>
    public IReadOnlyList<string> Predictors => _order;

    /// <summary>Registers a predictor so it is reported even without rows.</summary>
    public void AddPredictor(string predictor)
    {
        ArgumentNullException.ThrowIfNull(predictor);
        if (!_byPredictor.ContainsKey(predictor))
        {
            var buckets = new Accumulator[HorizonBucket.All.Count];
            for (var i = 0; i < buckets.Length; i++)
            {
                buckets[i] = new Accumulator();
            }

            _byPredictor[predictor] = buckets;
            _order.Add(predictor);
        }
    }

    /// <summary>Records one prediction; returns false when the horizon is outside every bucket or a value is not finite.</summary>
    /// <param name="predictor">Predictor name.</param>
    /// <param name="horizonSeconds">Actual arrival − prediction time.</param>
    /// <param name="errorSeconds">Predicted − actual arrival.</param>
    public bool Add(string predictor, double horizonSeconds, double errorSeconds)
    {
        var bucket = HorizonBucket.IndexOf(horizonSeconds);
        if (bucket < 0 || !double.IsFinite(errorSeconds))
        {
            return false;
        }

        AddPredictor(predictor);
        var acc = _byPredictor[predictor][bucket];
        acc.AbsErrors.Add((float)Math.Abs(errorSeconds));
        acc.SumError += errorSeconds;
        acc.SumSquares += errorSeconds * errorSeconds;
        if (CalItp.IsAccurate(errorSeconds, horizonSeconds))
        {
            acc.Accurate++;
        }

        return true;
    }

    /// <summary>The score of a predictor in bucket <paramref name="bucket"/> (index into <see cref="HorizonBucket.All"/>).</summary>
    public BucketScore Score(string predictor, int bucket)
    {
        var acc = _byPredictor[predictor][bucket];
        var n = acc.AbsErrors.Count;
        if (n == 0)
        {
            return new BucketScore(double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, 0);
        }

        double sumAbs = 0;
        foreach (var e in acc.AbsErrors)
        {
            sumAbs += e;
        }

        return new BucketScore(
            sumAbs / n, Math.Sqrt(acc.SumSquares / n), Percentile(acc.AbsErrors, 0.9), (double)acc.Accurate / n, acc.SumError / n, n);
    }

    /// <summary>The q-quantile (0..1) of <paramref name="values"/>, linear between order statistics (R type 7).</summary>
    public static double Percentile(IReadOnlyList<float> values, double q)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = new float[values.Count];
        for (var i = 0; i < sorted.Length; i++)
        {
            sorted[i] = values[i];
        }

        Array.Sort(sorted);
        var h = (sorted.Length - 1) * q;
        var lo = (int)Math.Floor(h);
        var hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + ((h - lo) * (sorted[hi] - sorted[lo]));
    }

    /// <summary>
    /// Writes <c>{"predictors":{"name":{"0-1":{"mae":s,"rmse":s,"p90":s,"calitp":x,"n":N},...},...}}</c>;
    /// metrics of an empty bucket are null.
    /// </summary>
    public string ToJson(bool indented = true)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = indented }))
        {
            w.WriteStartObject();
            w.WriteStartObject("predictors");
            foreach (var name in _order)
            {
                w.WriteStartObject(name);
                for (var b = 0; b < HorizonBucket.All.Count; b++)
                {
                    var s = Score(name, b);
                    w.WriteStartObject(HorizonBucket.All[b].Name);
                    WriteNumber(w, "mae", s.Mae, 1);
                    WriteNumber(w, "rmse", s.Rmse, 1);
                    WriteNumber(w, "p90", s.P90, 1);
                    WriteNumber(w, "calitp", s.CalItp, 4);
                    WriteNumber(w, "bias", s.Bias, 1);
                    w.WriteNumber("n", s.N);
                    w.WriteEndObject();
                }

                w.WriteEndObject();
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteNumber(Utf8JsonWriter w, string name, double value, int digits)
    {
        if (double.IsFinite(value))
        {
            w.WriteNumber(name, Math.Round(value, digits));
        }
        else
        {
            w.WriteNull(name);
        }
    }

    /// <summary>A fixed-width text table: one block per metric, predictors as rows, buckets as columns.</summary>
    public string ToTable()
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        var width = 10;
        foreach (var name in _order)
        {
            width = Math.Max(width, name.Length + 1);
        }

        foreach (var (metric, pick, format) in new (string, Func<BucketScore, double>, string)[]
                 {
                     ("MAE (s)", s => s.Mae, "0.0"),
                     ("RMSE (s)", s => s.Rmse, "0.0"),
                     ("p90 |error| (s)", s => s.P90, "0.0"),
                     ("Cal-ITP accurate", s => s.CalItp, "0.000"),
                 })
        {
            sb.Append(inv, $"{metric.PadRight(width)}");
            foreach (var bucket in HorizonBucket.All)
            {
                sb.Append(bucket.Name.PadLeft(9));
            }

            sb.Append('\n');
            foreach (var name in _order)
            {
                sb.Append(name.PadRight(width));
                for (var b = 0; b < HorizonBucket.All.Count; b++)
                {
                    var v = pick(Score(name, b));
                    sb.Append((double.IsFinite(v) ? v.ToString(format, inv) : "-").PadLeft(9));
                }

                sb.Append('\n');
            }

            sb.Append('\n');
        }

        sb.Append("n".PadRight(width));
        for (var b = 0; b < HorizonBucket.All.Count; b++)
        {
            var n = _order.Count > 0 ? Score(_order[0], b).N : 0;
            sb.Append(n.ToString(inv).PadLeft(9));
        }

        sb.Append('\n');
        return sb.ToString();
    }
}
