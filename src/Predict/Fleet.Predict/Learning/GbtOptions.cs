namespace Fleet.Predict.Learning;

/// <summary>The loss a gradient-boosted model minimises.</summary>
public enum GbtLoss : byte
{
    /// <summary>Squared error; the model estimates the conditional mean.</summary>
    Squared = 1,
    /// <summary>Absolute error; the model estimates the conditional median (robust to outliers).</summary>
    Absolute = 2,
}

/// <summary>Hyper-parameters of <see cref="GbtTrainer"/>.</summary>
public sealed record GbtOptions
{
    /// <summary>The loss to minimise.</summary>
    public GbtLoss Loss { get; init; } = GbtLoss.Squared;

    /// <summary>Maximum number of trees (boosting rounds).</summary>
    public int MaxTrees { get; init; } = 300;

    /// <summary>Shrinkage applied to every tree's output.</summary>
    public double LearningRate { get; init; } = 0.1;

    /// <summary>Maximum depth of a tree (the root has depth 0).</summary>
    public int MaxDepth { get; init; } = 6;

    /// <summary>Maximum leaves per tree; leaves are grown best-first (leaf-wise) within <see cref="MaxDepth"/>.</summary>
    public int MaxLeaves { get; init; } = 31;

    /// <summary>Minimum training rows in a leaf.</summary>
    public int MinSamplesLeaf { get; init; } = 20;

    /// <summary>L2 regularisation of leaf values (added to the row count in the denominator).</summary>
    public double L2 { get; init; } = 1.0;

    /// <summary>Fraction of training rows sampled (without replacement) for each tree; 1 disables sampling.</summary>
    public double Subsample { get; init; } = 0.8;

    /// <summary>Maximum histogram bins per feature, including the bin for missing values (at most 255).</summary>
    public int MaxBins { get; init; } = 255;

    /// <summary>Stop when the validation loss has not improved for this many rounds; 0 disables early stopping.</summary>
    public int EarlyStoppingRounds { get; init; } = 20;

    /// <summary>Seed of the row sampler; equal seeds and data give identical models.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Throws when a value is out of range.</summary>
    public void Validate()
    {
        if (Loss is not (GbtLoss.Squared or GbtLoss.Absolute))
        {
            throw new ArgumentOutOfRangeException(nameof(Loss), Loss, "unknown loss");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(MaxTrees, 1, nameof(MaxTrees));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(LearningRate, 0.0, nameof(LearningRate));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(LearningRate, 1.0, nameof(LearningRate));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxDepth, 1, nameof(MaxDepth));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxDepth, 24, nameof(MaxDepth));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxLeaves, 2, nameof(MaxLeaves));
        ArgumentOutOfRangeException.ThrowIfLessThan(MinSamplesLeaf, 1, nameof(MinSamplesLeaf));
        ArgumentOutOfRangeException.ThrowIfNegative(L2, nameof(L2));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(Subsample, 0.0, nameof(Subsample));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Subsample, 1.0, nameof(Subsample));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxBins, 3, nameof(MaxBins));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxBins, 255, nameof(MaxBins));
        ArgumentOutOfRangeException.ThrowIfNegative(EarlyStoppingRounds, nameof(EarlyStoppingRounds));
    }
}
