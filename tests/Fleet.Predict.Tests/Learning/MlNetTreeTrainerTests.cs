using Fleet.Predict.Learning;
using Fleet.Predict.Offline;

namespace Fleet.Predict.Tests.Learning;

/// <summary>ML.NET's trainers behind <see cref="ITreeTrainer"/>: they learn, convert exactly and repeat themselves.</summary>
public sealed class MlNetTreeTrainerTests
{
    // y = 10·x0 + 5·[x1 > 0.5] + noise; x2 is missing (NaN) on a third of the rows and then adds 4.
    private static Dataset Table(int rows, ulong seed)
    {
        var data = new Dataset(["x0", "x1", "x2"], rows);
        var rng = new TestRng(seed);
        for (var r = 0; r < rows; r++)
        {
            var x0 = (float)rng.NextDouble();
            var x1 = (float)rng.NextDouble();
            var missing = rng.NextInt(3) == 0;
            var x2 = missing ? float.NaN : (float)rng.NextDouble();
            var y = (10 * x0) + (x1 > 0.5f ? 5 : 0) + (missing ? 4 : 0) + (float)(0.1 * rng.NextGaussian());
            data.Add([x0, x1, x2], y, r);
        }

        return data;
    }

    private static double Mae(GbtModel model, Dataset data)
    {
        var sum = 0.0;
        for (var r = 0; r < data.Rows; r++)
        {
            sum += Math.Abs(model.Predict(data.Row(r)) - data.Targets[r]);
        }

        return sum / data.Rows;
    }

    [Theory]
    [InlineData(TreeTrainers.LightGbm)]
    [InlineData(TreeTrainers.FastTree)]
    public void Fit_LearnsTheFunction_IncludingMissingValues_AndRepeats(string name)
    {
        var train = Table(4_000, 1);
        var validation = Table(1_000, 2);
        var trainer = TreeTrainers.Create(name, new GbtOptions { MaxTrees = 200, EarlyStoppingRounds = 20 });

        var a = trainer.Fit(train, validation, cancellationToken: TestContext.Current.CancellationToken);
        var b = trainer.Fit(train, validation, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(name, trainer.Name);
        // The targets spread over about 19 units; a constant would miss by about 4.
        Assert.True(Mae(a.Model, validation) < 0.6, $"{name}: validation MAE {Mae(a.Model, validation):0.000}");
        // Rows with x2 missing (NaN in Fleet's trees, float.MinValue in ML.NET's) get their +4.
        var missing = a.Model.Predict([0.5f, 0.2f, float.NaN]);
        var present = a.Model.Predict([0.5f, 0.2f, 0.5f]);
        Assert.True(missing - present is > 3 and < 5, $"{name}: missing {missing:0.00} vs present {present:0.00}");
        Assert.Equal(a.Model.TreeCount, b.Model.TreeCount);
        for (var r = 0; r < validation.Rows; r++)
        {
            Assert.Equal(a.Model.Predict(validation.Row(r)), b.Model.Predict(validation.Row(r)));
        }
    }

    [Fact]
    public void Create_UnknownTrainer_NamesTheChoices()
    {
        var e = Assert.Throws<ArgumentException>(() => TreeTrainers.Create("xgboost", new GbtOptions()));
        Assert.Contains("gbdt, lightgbm, fasttree", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_Overrides_ReachTheTrainer()
    {
        var trainer = (MlNetTreeTrainer)TreeTrainers.Create(TreeTrainers.LightGbm, new GbtOptions(), new TreeOverrides(0.05, 15, 7));

        Assert.Equal(0.05, trainer.Options.LearningRate);
        Assert.Equal(15, trainer.Options.Leaves);
        Assert.Equal(7, trainer.Options.MinRowsPerLeaf);
    }
}

public sealed class MlNetArrivalModelTests : IDisposable
{
    private readonly LineFeed _feed = new(trips: 30);

    public void Dispose() => _feed.Dispose();

    [Fact]
    public void Train_WithLightGbm_ModelFileKeepsTheTrainer_AndPredictsTheSame()
    {
        var day = Offline.SyntheticDay.Create(_feed, seed: 5);
        var options = new ArrivalTrainingOptions { Trainer = TreeTrainers.LightGbm, Trees = new GbtOptions { MaxTrees = 40, EarlyStoppingRounds = 10 } };
        var model = ArrivalPipeline.Train(_feed.Schedule, [day], options, cancellationToken: TestContext.Current.CancellationToken).Model;
        using var stream = new MemoryStream();
        model.Save(stream);

        var loaded = ArrivalModel.Load(new MemoryStream(stream.ToArray()));

        Assert.Equal("lightgbm", loaded.Trainer);
        Assert.StartsWith("lightgbm, ", loaded.Description, StringComparison.Ordinal);
        Assert.Equal(model.Blend.Rules, loaded.Blend.Rules);
        var (a, _) = ArrivalPipeline.Evaluate(_feed.Schedule, [day], model.Bind(_feed.Schedule), cancellationToken: TestContext.Current.CancellationToken);
        var (b, _) = ArrivalPipeline.Evaluate(_feed.Schedule, [day], loaded.Bind(_feed.Schedule), cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(a.ToJson(), b.ToJson());
    }
}
