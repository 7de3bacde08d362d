using Fleet.Predict.Evaluation;

namespace Fleet.Predict;

/// <summary>
/// Empirical 10th and 90th percentiles of (actual − predicted) per horizon bucket for one predictor, measured on
/// held-out data at training time; they turn a point prediction into a p10-p90 range.
/// </summary>
/// <remarks>Immutable after construction; thread-safe.</remarks>
public sealed class ResidualBands
{
    // One row per horizon bucket plus one for horizons beyond 30 min.
    private readonly float[] _p10;
    private readonly float[] _p90;

    /// <summary>Rows: the horizon buckets and one for longer horizons.</summary>
    public static int Rows => HorizonBucket.All.Count + 1;

    /// <summary>Creates bands from per-row percentiles.</summary>
    public ResidualBands(float[] p10, float[] p90)
    {
        ArgumentNullException.ThrowIfNull(p10);
        ArgumentNullException.ThrowIfNull(p90);
        if (p10.Length != Rows || p90.Length != Rows)
        {
            throw new ArgumentException($"expected {Rows} rows");
        }

        _p10 = p10;
        _p90 = p90;
    }

    /// <summary>A default band when nothing was measured: ±(30 s + 15% of the horizon).</summary>
    public static ResidualBands Default { get; } = CreateDefault();

    private static ResidualBands CreateDefault()
    {
        var p10 = new float[Rows];
        var p90 = new float[Rows];
        for (var i = 0; i < Rows; i++)
        {
            var mid = i < HorizonBucket.All.Count ? 30 * (HorizonBucket.All[i].FromMinutes + HorizonBucket.All[i].ToMinutes) : 2400;
            p10[i] = (float)-(30 + (0.15 * mid));
            p90[i] = (float)(30 + (0.15 * mid));
        }

        return new ResidualBands(p10, p90);
    }

    /// <summary>Measures bands from (horizon, actual − predicted) pairs; rows with fewer than 20 pairs use the default.</summary>
    public static ResidualBands Measure(IReadOnlyList<(double HorizonSeconds, double Residual)> pairs)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        var lists = new List<float>[Rows];
        for (var i = 0; i < Rows; i++)
        {
            lists[i] = [];
        }

        foreach (var (h, r) in pairs)
        {
            lists[Row(h)].Add((float)r);
        }

        var p10 = new float[Rows];
        var p90 = new float[Rows];
        for (var i = 0; i < Rows; i++)
        {
            if (lists[i].Count >= 20)
            {
                // Percentile of signed residuals: shift to non-negative is unnecessary, Percentile sorts values.
                p10[i] = (float)Scorecard.Percentile(lists[i], 0.1);
                p90[i] = (float)Scorecard.Percentile(lists[i], 0.9);
            }
            else
            {
                p10[i] = Default._p10[i];
                p90[i] = Default._p90[i];
            }
        }

        return new ResidualBands(p10, p90);
    }

    private static int Row(double horizonSeconds)
    {
        var b = HorizonBucket.IndexOf(Math.Max(0, horizonSeconds));
        return b < 0 ? Rows - 1 : b;
    }

    /// <summary>The (p10, p90) offsets for a predicted horizon in seconds.</summary>
    public (double Low, double High) At(double horizonSeconds)
    {
        var r = Row(horizonSeconds);
        return (_p10[r], _p90[r]);
    }

    /// <summary>Writes the bands.</summary>
    public void Write(BinaryWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.Write(Rows);
        for (var i = 0; i < Rows; i++)
        {
            w.Write(_p10[i]);
            w.Write(_p90[i]);
        }
    }

    /// <summary>Reads bands written by <see cref="Write"/>.</summary>
    public static ResidualBands Read(BinaryReader r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var rows = r.ReadInt32();
        if (rows != Rows)
        {
            throw new InvalidDataException($"residual bands with {rows} rows; expected {Rows}");
        }

        var p10 = new float[rows];
        var p90 = new float[rows];
        for (var i = 0; i < rows; i++)
        {
            p10[i] = r.ReadSingle();
            p90[i] = r.ReadSingle();
        }

        return new ResidualBands(p10, p90);
    }
}
