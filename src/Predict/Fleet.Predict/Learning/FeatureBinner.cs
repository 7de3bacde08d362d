namespace Fleet.Predict.Learning;

/// <summary>
/// Maps raw feature values to histogram bins: bin 0 holds missing values (NaN), bins 1..n hold values by
/// quantile. A feature with few distinct values gets one bin per value, so splits between any two of them exist.
/// </summary>
/// <remarks>
/// For edges <c>e[0] &lt; e[1] &lt; … &lt; e[m-1]</c>, a value <c>v</c> falls in bin <c>1 + |{ i : e[i] &lt; v }|</c>,
/// so bin <c>b ≥ 1</c> holds <c>e[b-2] &lt; v ≤ e[b-1]</c>. A split "bin ≤ t" is then the raw test
/// "v is NaN or v ≤ e[t-1]" (t = 0: only NaN goes left), which is what <see cref="GbtModel"/> stores.
/// Immutable after construction; thread-safe.
/// </remarks>
internal sealed class FeatureBinner
{
    private readonly float[][] _edges;

    private FeatureBinner(float[][] edges) => _edges = edges;

    /// <summary>Number of features.</summary>
    public int Columns => _edges.Length;

    /// <summary>Bins used by feature <paramref name="column"/>, including the missing bin.</summary>
    public int BinCount(int column) => _edges[column].Length + 2;

    /// <summary>The raw threshold equivalent to "bin ≤ <paramref name="bin"/>".</summary>
    public float Threshold(int column, int bin) => bin == 0 ? float.NegativeInfinity : _edges[column][bin - 1];

    /// <summary>Computes the bin edges of every column from (a sample of) the rows.</summary>
    public static FeatureBinner Fit(ReadOnlySpan<float> features, int rows, int columns, int maxBins, ulong seed)
    {
        // Sorting every value of a big table is the slow part; a uniform sample of 200k rows estimates
        // quantiles to well under one bin width for 255 bins.
        const int MaxSample = 200_000;
        var sampleRows = Math.Min(rows, MaxSample);
        var rowIndex = new int[sampleRows];
        if (sampleRows == rows)
        {
            for (var i = 0; i < rows; i++)
            {
                rowIndex[i] = i;
            }
        }
        else
        {
            var rng = new Pcg32(seed, 11);
            for (var i = 0; i < sampleRows; i++)
            {
                rowIndex[i] = rng.NextInt(rows);
            }
        }

        var valueBins = maxBins - 2; // bin 0 is "missing"; m edges give m + 1 value bins
        var edges = new float[columns][];
        var values = new float[sampleRows];
        for (var c = 0; c < columns; c++)
        {
            var n = 0;
            for (var i = 0; i < sampleRows; i++)
            {
                var v = features[(rowIndex[i] * columns) + c];
                if (!float.IsNaN(v))
                {
                    values[n++] = v;
                }
            }

            edges[c] = ColumnEdges(values.AsSpan(0, n), valueBins);
        }

        return new FeatureBinner(edges);
    }

    private static float[] ColumnEdges(Span<float> values, int maxEdges)
    {
        if (values.Length == 0)
        {
            return [];
        }

        values.Sort();
        var distinct = 1;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] != values[i - 1])
            {
                distinct++;
            }
        }

        var result = new List<float>(Math.Min(distinct, maxEdges));
        if (distinct <= maxEdges + 1)
        {
            // One bin per distinct value: edge = the value itself (bin holds v <= edge).
            for (var i = 1; i < values.Length; i++)
            {
                if (values[i] != values[i - 1])
                {
                    result.Add(values[i - 1]);
                }
            }

            return [.. result];
        }

        // Quantile edges; a heavy value can fill several quantiles, so duplicates are dropped.
        var bins = maxEdges + 1;
        for (var k = 1; k < bins; k++)
        {
            var idx = (int)((long)k * values.Length / bins);
            var edge = values[Math.Min(idx, values.Length - 1)];
            if (result.Count == 0 || edge > result[^1])
            {
                result.Add(edge);
            }
        }

        // The largest value needs no edge (the last bin is open above).
        if (result.Count > 0 && result[^1] >= values[^1])
        {
            result.RemoveAt(result.Count - 1);
        }

        return [.. result];
    }

    /// <summary>The bin of <paramref name="value"/> in column <paramref name="column"/>.</summary>
    public byte Bin(int column, float value)
    {
        if (float.IsNaN(value))
        {
            return 0;
        }

        var e = _edges[column];
        // Count of edges strictly below value: lower bound of value.
        int lo = 0, hi = e.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (e[mid] < value)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return (byte)(lo + 1);
    }

    /// <summary>Bins a whole row-major table into a row-major byte matrix.</summary>
    public byte[] BinAll(ReadOnlySpan<float> features, int rows)
    {
        var columns = Columns;
        var result = new byte[checked(rows * columns)];
        for (var r = 0; r < rows; r++)
        {
            var o = r * columns;
            for (var c = 0; c < columns; c++)
            {
                result[o + c] = Bin(c, features[o + c]);
            }
        }

        return result;
    }
}
