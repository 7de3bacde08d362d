namespace Fleet.Predict.Learning;

/// <summary>
/// A dense training table: <see cref="Rows"/> rows of <see cref="Columns"/> float features (row-major), a target
/// per row and an optional group per row (e.g. the trip a row came from) so that splits can keep groups together.
/// </summary>
/// <remarks>Grows by <see cref="Add(ReadOnlySpan{float}, float, int)"/>; not thread-safe. Missing features are NaN.</remarks>
public sealed class Dataset
{
    private float[] _features;
    private float[] _targets;
    private int[] _groups;

    /// <summary>Creates an empty table with the given feature names.</summary>
    public Dataset(IReadOnlyList<string> featureNames, int capacity = 1024)
    {
        ArgumentNullException.ThrowIfNull(featureNames);
        ArgumentOutOfRangeException.ThrowIfZero(featureNames.Count);
        FeatureNames = [.. featureNames];
        Columns = FeatureNames.Length;
        capacity = Math.Max(capacity, 16);
        _features = new float[checked(capacity * Columns)];
        _targets = new float[capacity];
        _groups = new int[capacity];
    }

    /// <summary>The feature names, one per column.</summary>
    public string[] FeatureNames { get; }

    /// <summary>Number of feature columns.</summary>
    public int Columns { get; }

    /// <summary>Number of rows.</summary>
    public int Rows { get; private set; }

    /// <summary>The row-major features; only the first <c>Rows * Columns</c> entries are used.</summary>
    public ReadOnlySpan<float> Features => _features.AsSpan(0, Rows * Columns);

    /// <summary>The targets; <see cref="Rows"/> entries.</summary>
    public ReadOnlySpan<float> Targets => _targets.AsSpan(0, Rows);

    /// <summary>The group of each row; <see cref="Rows"/> entries.</summary>
    public ReadOnlySpan<int> Groups => _groups.AsSpan(0, Rows);

    /// <summary>The features of row <paramref name="row"/>.</summary>
    public ReadOnlySpan<float> Row(int row) => _features.AsSpan(row * Columns, Columns);

    /// <summary>Appends a row.</summary>
    public void Add(ReadOnlySpan<float> features, float target, int group = 0)
    {
        if (features.Length != Columns)
        {
            throw new ArgumentException($"expected {Columns} features, got {features.Length}", nameof(features));
        }

        if (float.IsNaN(target) || float.IsInfinity(target))
        {
            throw new ArgumentException("the target must be a finite number", nameof(target));
        }

        if (Rows == _targets.Length)
        {
            var capacity = checked(_targets.Length * 2);
            Array.Resize(ref _features, checked(capacity * Columns));
            Array.Resize(ref _targets, capacity);
            Array.Resize(ref _groups, capacity);
        }

        features.CopyTo(_features.AsSpan(Rows * Columns));
        _targets[Rows] = target;
        _groups[Rows] = group;
        Rows++;
    }

    /// <summary>
    /// Splits into a training and a validation table; whole groups go to one side, chosen at random with
    /// <paramref name="seed"/>, so that rows of one trip never straddle the split.
    /// </summary>
    public (Dataset Train, Dataset Validation) SplitByGroup(double validationFraction, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(validationFraction, 0.0);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(validationFraction, 1.0);
        var rng = new Pcg32(seed, 7);
        // Decide per group with a hash of (seed, group) so the decision does not depend on row order.
        var train = new Dataset(FeatureNames, Math.Max(16, Rows));
        var validation = new Dataset(FeatureNames, Math.Max(16, (int)(Rows * validationFraction) + 16));
        var salt = rng.NextUInt();
        for (var r = 0; r < Rows; r++)
        {
            var u = Mix(unchecked((ulong)(uint)_groups[r] ^ ((ulong)salt << 32))) * (1.0 / ulong.MaxValue);
            var target = u < validationFraction ? validation : train;
            target.Add(Row(r), _targets[r], _groups[r]);
        }

        return (train, validation);
    }

    private static ulong Mix(ulong x)
    {
        // SplitMix64 finalizer: a good 64-bit avalanche for hashing group ids.
        unchecked
        {
            x += 0x9E3779B97F4A7C15UL;
            x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
            x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
            return x ^ (x >> 31);
        }
    }
}
