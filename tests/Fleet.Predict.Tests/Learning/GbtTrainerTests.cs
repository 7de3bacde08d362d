using Fleet.Predict.Learning;

namespace Fleet.Predict.Tests.Learning;

public sealed class GbtTrainerTests
{
    private static Dataset Table(int rows, int columns, ulong seed, Func<float[], TestRng, float> target, Func<TestRng, float>? x = null)
    {
        var names = new string[columns];
        for (var c = 0; c < columns; c++)
        {
            names[c] = "x" + c;
        }

        var data = new Dataset(names, rows);
        var rng = new TestRng(seed);
        var row = new float[columns];
        for (var r = 0; r < rows; r++)
        {
            for (var c = 0; c < columns; c++)
            {
                row[c] = x is null ? (float)rng.NextDouble() : x(rng);
            }

            data.Add(row, target(row, rng), r);
        }

        return data;
    }

    private static double Mse(GbtModel model, Dataset data)
    {
        double sum = 0;
        for (var r = 0; r < data.Rows; r++)
        {
            var d = model.Predict(data.Row(r)) - data.Targets[r];
            sum += d * d;
        }

        return sum / data.Rows;
    }

    [Fact]
    public void Fit_StepFunctionOnGrid_FitsExactly()
    {
        // x takes 100 distinct values (k/100), so the binner gives each its own bin and a split at the step exists.
        var data = Table(2000, 1, 1, (x, _) => x[0] < 0.505f ? 3f : 10f, rng => rng.NextInt(100) / 100f);
        var options = new GbtOptions { MaxTrees = 1, LearningRate = 1.0, MaxDepth = 1, MinSamplesLeaf = 1, L2 = 0, Subsample = 1 };

        var model = new GbtTrainer(options).FitT(data).Model;

        for (var r = 0; r < data.Rows; r++)
        {
            Assert.Equal(data.Targets[r], model.Predict(data.Row(r)), 9);
        }
    }

    [Fact]
    public void Fit_TwoDimensionalStep_FitsExactlyWithShrinkage()
    {
        // y = 5·[x0 > 0.3] + 2·[x1 > 0.7] on a 20×20 grid: two splits, reached by depth-2 trees; with shrinkage 0.5 the
        // residual halves every round, so 40 rounds leave 7·0.5^40 ≈ 6e-12.
        var data = Table(4000, 2, 2, (x, _) => (x[0] > 0.3f ? 5f : 0f) + (x[1] > 0.7f ? 2f : 0f), rng => rng.NextInt(20) / 20f);
        var options = new GbtOptions { MaxTrees = 40, LearningRate = 0.5, MaxDepth = 2, MinSamplesLeaf = 1, L2 = 0, Subsample = 1 };

        var model = new GbtTrainer(options).FitT(data).Model;

        Assert.True(Mse(model, data) < 1e-12, $"MSE {Mse(model, data)}");
    }

    [Fact]
    public void Fit_NoisySine_ApproachesNoiseFloorAndBeatsConstant()
    {
        // y = f(x) + ε with f(x) = sin(2πx), x ~ U(0,1), ε ~ N(0, σ²), σ = 0.3.
        // Var(f) = E[sin²] - E[sin]² = 1/2, so the best constant predictor (the mean) has MSE Var(f) + σ² = 0.59,
        // and no predictor can beat σ² = 0.09 in expectation. On n = 4000 fresh rows the test MSE of a predictor g is
        // σ² + E[(g-f)²] ± sampling noise; the noise term's standard deviation is σ²·√(2/n) ≈ 0.002, negligible.
        // A smooth 1-D function with 8000 training rows is learned to within E[(g-f)²] of a few 1e-3 by
        // piecewise-constant trees (bias ≈ (slope·binwidth)²/12 plus variance ≈ σ²·leaves/n), so we demand
        // MSE < σ² + 0.03 = 0.12, which is also a factor 0.59/0.12 ≈ 4.9 better than the constant.
        const double Sigma = 0.3;
        Func<float[], TestRng, float> target = (x, rng) => (float)(Math.Sin(2 * Math.PI * x[0]) + (Sigma * rng.NextGaussian()));
        var train = Table(8000, 1, 10, target);
        var validation = Table(2000, 1, 11, target);
        var test = Table(4000, 1, 12, target);
        var options = new GbtOptions { MaxTrees = 400, LearningRate = 0.1, MaxDepth = 3, MinSamplesLeaf = 20 };

        var model = new GbtTrainer(options).FitT(train, validation).Model;

        var mean = 0.0;
        for (var r = 0; r < train.Rows; r++)
        {
            mean += train.Targets[r];
        }

        mean /= train.Rows;
        var constantMse = 0.0;
        for (var r = 0; r < test.Rows; r++)
        {
            constantMse += (test.Targets[r] - mean) * (test.Targets[r] - mean);
        }

        constantMse /= test.Rows;
        var modelMse = Mse(model, test);
        Assert.True(constantMse > 0.5, $"constant MSE {constantMse} should be near 0.59");
        Assert.True(modelMse < (Sigma * Sigma) + 0.03, $"model MSE {modelMse}, noise floor {Sigma * Sigma}");
    }

    [Fact]
    public void Fit_AbsoluteLoss_EstimatesMedianUnderOutliers()
    {
        // y = 10·x + ε where ε is 0 for 80% of rows and +1000 for 20%: the conditional median is 10·x, the mean
        // 10·x + 200. Absolute loss must recover the median to within a bin's width of slope (10/254 ≈ 0.04) plus
        // shrinkage leftovers; we allow 0.5.
        var data = Table(5000, 1, 5, (x, rng) => (10f * x[0]) + (rng.NextDouble() < 0.2 ? 1000f : 0f));
        var options = new GbtOptions { Loss = GbtLoss.Absolute, MaxTrees = 300, LearningRate = 0.2, MaxDepth = 4, MinSamplesLeaf = 20, Subsample = 1 };

        var model = new GbtTrainer(options).FitT(data).Model;

        foreach (var x in new[] { 0.1f, 0.3f, 0.5f, 0.7f, 0.9f })
        {
            var p = model.Predict([x]);
            Assert.True(Math.Abs(p - (10 * x)) < 0.5, $"at x={x}: predicted {p}, median {10 * x}");
        }
    }

    [Fact]
    public void Fit_SameSeed_IdenticalModels_DifferentSeed_DifferentModels()
    {
        var data = Table(3000, 3, 20, (x, rng) => (float)((x[0] * 3) + Math.Sin(6 * x[1]) + (0.2 * rng.NextGaussian())));
        var options = new GbtOptions { MaxTrees = 30, Subsample = 0.5, Seed = 42 };

        var a = Bytes(new GbtTrainer(options).FitT(data).Model);
        var b = Bytes(new GbtTrainer(options).FitT(data).Model);
        var c = Bytes(new GbtTrainer(options with { Seed = 43 }).FitT(data).Model);

        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void Fit_PureNoiseTarget_StopsEarly()
    {
        // The target is independent of x: after a few rounds every tree only fits noise, the validation loss stops
        // improving, and training must stop long before 1000 rounds, keeping the best (early) round.
        var train = Table(2000, 2, 30, (_, rng) => (float)rng.NextGaussian());
        var validation = Table(1000, 2, 31, (_, rng) => (float)rng.NextGaussian());
        var options = new GbtOptions { MaxTrees = 1000, EarlyStoppingRounds = 10, LearningRate = 0.3 };

        var result = new GbtTrainer(options).FitT(train, validation);

        Assert.True(result.StoppedEarly);
        Assert.Equal(result.BestIteration + 10, result.ValidationLoss.Count);
        Assert.Equal(result.BestIteration, result.Model.TreeCount);
        Assert.True(result.ValidationLoss.Count < 200, $"ran {result.ValidationLoss.Count} rounds");
    }

    [Fact]
    public void Fit_MissingValues_GoToTheirOwnSide()
    {
        // y = 7 when x is missing, else x: the missing bin is bin 0, so "NaN" must be separable from every value.
        var data = Table(2000, 1, 40, (x, _) => float.IsNaN(x[0]) ? 7f : x[0], rng => rng.NextDouble() < 0.3 ? float.NaN : rng.NextInt(5));
        var options = new GbtOptions { MaxTrees = 1, LearningRate = 1, MaxDepth = 6, MinSamplesLeaf = 1, L2 = 0, Subsample = 1 };

        var model = new GbtTrainer(options).FitT(data).Model;

        Assert.Equal(7.0, model.Predict([float.NaN]), 9);
        Assert.Equal(2.0, model.Predict([2f]), 9);
    }

    [Fact]
    public void Options_OutOfRange_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new GbtTrainer(new GbtOptions { MaxBins = 256 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GbtTrainer(new GbtOptions { Subsample = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GbtTrainer(new GbtOptions { LearningRate = 2 }));
    }

    internal static byte[] Bytes(GbtModel model)
    {
        using var stream = new MemoryStream();
        model.Save(stream);
        return stream.ToArray();
    }
}
