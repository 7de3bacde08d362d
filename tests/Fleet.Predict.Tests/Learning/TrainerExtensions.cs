using Fleet.Predict.Learning;

namespace Fleet.Predict.Tests.Learning;

internal static class TrainerExtensions
{
    /// <summary>Fit with the test's cancellation token.</summary>
    public static GbtTrainingResult FitT(this GbtTrainer trainer, Dataset train, Dataset? validation = null) =>
        trainer.Fit(train, validation, null, TestContext.Current.CancellationToken);
}

/// <summary>A reference wrapper over <see cref="Pcg32"/> so lambdas share one stream (a struct would be copied).</summary>
internal sealed class TestRng(ulong seed)
{
    private Pcg32 _rng = new(seed);

    public double NextDouble() => _rng.NextDouble();

    public int NextInt(int max) => _rng.NextInt(max);

    public double NextGaussian() => _rng.NextGaussian();
}
