using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers.FastTree;
using Microsoft.ML.Trainers.LightGbm;

namespace Fleet.Predict.Learning;

/// <summary>Grows a <see cref="GbtModel"/> from a training table (early stopping on an optional validation table).</summary>
public interface ITreeTrainer
{
    /// <summary>The trainer's name as <c>fleet train --trainer</c> takes it.</summary>
    public string Name { get; }

    /// <summary>Trains on <paramref name="train"/>; with <paramref name="validation"/>, stops early on its loss.</summary>
    public GbtTrainingResult Fit(Dataset train, Dataset? validation = null, IProgress<GbtProgress>? progress = null, CancellationToken cancellationToken = default);
}

/// <summary>The tree trainers <c>fleet train --trainer</c> offers.</summary>
public static class TreeTrainers
{
    /// <summary>Our own histogram gradient boosting (<see cref="GbtTrainer"/>).</summary>
    public const string Gbdt = "gbdt";

    /// <summary>ML.NET's LightGBM regression trainer.</summary>
    public const string LightGbm = "lightgbm";

    /// <summary>ML.NET's FastTree regression trainer.</summary>
    public const string FastTree = "fasttree";

    /// <summary>The names, the default first.</summary>
    public static IReadOnlyList<string> Names { get; } = [Gbdt, LightGbm, FastTree];

    /// <summary>Creates a trainer by name, each with its tuned settings (see docs/PREDICTION.md).</summary>
    /// <param name="name">gbdt, lightgbm or fasttree.</param>
    /// <param name="trees">Our trainer's options; the ML.NET trainers take its tree budget, early stopping and seed.</param>
    /// <param name="overrides">Settings given on the command line, over the trainer's tuned ones; null for none.</param>
    /// <exception cref="ArgumentException">An unknown name.</exception>
    public static ITreeTrainer Create(string name, GbtOptions trees, TreeOverrides? overrides = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(trees);
        var o = overrides ?? new TreeOverrides();
        MlNetTreeOptions Apply(MlNetTreeOptions m) => m with
        {
            LearningRate = o.LearningRate ?? m.LearningRate,
            Leaves = o.Leaves ?? m.Leaves,
            MinRowsPerLeaf = o.MinRowsPerLeaf ?? m.MinRowsPerLeaf,
        };
        return name switch
        {
            Gbdt => new GbtTrainer(trees with
            {
                LearningRate = o.LearningRate ?? trees.LearningRate,
                MaxLeaves = o.Leaves ?? trees.MaxLeaves,
                MinSamplesLeaf = o.MinRowsPerLeaf ?? trees.MinSamplesLeaf,
            }),
            LightGbm => new MlNetTreeTrainer(Apply(MlNetTreeOptions.LightGbm(trees))),
            FastTree => new MlNetTreeTrainer(Apply(MlNetTreeOptions.FastTree(trees))),
            _ => throw new ArgumentException($"unknown trainer '{name}' (expected {string.Join(", ", Names)})", nameof(name)),
        };
    }
}

/// <summary>Tree settings given explicitly (<c>fleet train --learning-rate --leaves --min-leaf</c>); null keeps the trainer's own.</summary>
/// <param name="LearningRate">Shrinkage.</param>
/// <param name="Leaves">Leaves per tree.</param>
/// <param name="MinRowsPerLeaf">Fewest rows in a leaf.</param>
public sealed record TreeOverrides(double? LearningRate = null, int? Leaves = null, int? MinRowsPerLeaf = null);

/// <summary>Settings of an ML.NET tree trainer.</summary>
public sealed record MlNetTreeOptions
{
    /// <summary><see cref="TreeTrainers.LightGbm"/> or <see cref="TreeTrainers.FastTree"/>.</summary>
    public required string Trainer { get; init; }

    /// <summary>Most boosting rounds.</summary>
    public int MaxTrees { get; init; } = 400;

    /// <summary>Shrinkage.</summary>
    public double LearningRate { get; init; } = 0.1;

    /// <summary>Leaves per tree.</summary>
    public int Leaves { get; init; } = 31;

    /// <summary>Fewest rows in a leaf.</summary>
    public int MinRowsPerLeaf { get; init; } = 50;

    /// <summary>Share of the rows each tree sees (bagging).</summary>
    public double RowFraction { get; init; } = 0.7;

    /// <summary>Share of the features each tree may split on.</summary>
    public double FeatureFraction { get; init; } = 1.0;

    /// <summary>L2 regularisation of the leaf values (LightGBM).</summary>
    public double L2 { get; init; } = 1.0;

    /// <summary>LightGBM: stop after this many rounds without a better validation MAE (FastTree trains every round and
    /// keeps the best).</summary>
    public int EarlyStoppingRounds { get; init; } = 30;

    /// <summary>
    /// Both ML.NET regression trainers minimise squared error; targets are clipped to this central share of the
    /// training targets (0.99: the 0.5th and 99.5th percentiles) so that a few wild arrivals do not steer the trees.
    /// 1 keeps the targets as they are.
    /// </summary>
    public double TargetClipShare { get; init; } = 0.99;

    /// <summary>The seed of ML.NET's context and of the trainer.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>The tuned LightGBM settings (see docs/PREDICTION.md, "Trainer bake-off").</summary>
    public static MlNetTreeOptions LightGbm(GbtOptions trees)
    {
        ArgumentNullException.ThrowIfNull(trees);
        return new()
        {
            Trainer = TreeTrainers.LightGbm,
            MaxTrees = Math.Max(trees.MaxTrees, 1),
            LearningRate = 0.1,
            Leaves = 31,
            MinRowsPerLeaf = 100,
            RowFraction = 0.7,
            FeatureFraction = 0.8,
            L2 = 10,
            EarlyStoppingRounds = trees.EarlyStoppingRounds,
            Seed = unchecked((int)trees.Seed),
        };
    }

    /// <summary>The tuned FastTree settings (see docs/PREDICTION.md, "Trainer bake-off").</summary>
    public static MlNetTreeOptions FastTree(GbtOptions trees)
    {
        ArgumentNullException.ThrowIfNull(trees);
        return new()
        {
            Trainer = TreeTrainers.FastTree,
            MaxTrees = Math.Max(trees.MaxTrees, 1),
            LearningRate = 0.2,
            Leaves = 31,
            MinRowsPerLeaf = 100,
            RowFraction = 0.7,
            FeatureFraction = 0.8,
            EarlyStoppingRounds = trees.EarlyStoppingRounds,
            Seed = unchecked((int)trees.Seed),
        };
    }
}

/// <summary>
/// Trains with ML.NET (LightGBM or FastTree) and converts the trained ensemble into a <see cref="GbtModel"/>, so
/// predicting needs no ML.NET engine (thread-safe, allocation-free, the same file format and the same speed as our
/// own trees).
/// </summary>
/// <remarks>
/// <para>Missing features (NaN) are given to ML.NET as <see cref="float.MinValue"/>: ML.NET's trees go left when
/// <c>x &lt;= threshold</c>, so the lowest float goes left at every split, exactly where <see cref="GbtModel"/> sends
/// NaN. Every conversion is checked: the converted trees must give ML.NET's own scores on up to 2,000 validation rows
/// (within 1e-3 relative), or training fails with a message.</para>
/// <para>Reproducible: a fresh <see cref="MLContext"/> with the seed per training, LightGBM in deterministic mode,
/// FastTree on one thread.</para>
/// </remarks>
public sealed class MlNetTreeTrainer : ITreeTrainer
{
    private readonly MlNetTreeOptions _options;

    /// <summary>Creates the trainer.</summary>
    public MlNetTreeTrainer(MlNetTreeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Trainer is not (TreeTrainers.LightGbm or TreeTrainers.FastTree))
        {
            throw new ArgumentException($"unknown ML.NET trainer '{options.Trainer}'", nameof(options));
        }

        _options = options;
    }

    /// <inheritdoc />
    public string Name => _options.Trainer;

    /// <summary>The settings.</summary>
    public MlNetTreeOptions Options => _options;

    private sealed class Row
    {
        public float[] Features { get; set; } = [];

        public float Label { get; set; }
    }

    /// <inheritdoc />
    public GbtTrainingResult Fit(Dataset train, Dataset? validation = null, IProgress<GbtProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (train.Rows < 2)
        {
            throw new ArgumentException("training needs at least two rows", nameof(train));
        }

        if (validation is not null && validation.Columns != train.Columns)
        {
            throw new ArgumentException("validation and training tables have different columns", nameof(validation));
        }

        cancellationToken.ThrowIfCancellationRequested();
        var o = _options;
        var ml = new MLContext(o.Seed);
        var (lo, hi) = ClipRange(train.Targets, o.TargetClipShare);
        var schema = SchemaDefinition.Create(typeof(Row));
        schema[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, train.Columns);
        var trainView = ml.Data.LoadFromEnumerable(Rows(train, lo, hi), schema);
        var validView = validation is { Rows: > 0 } ? ml.Data.LoadFromEnumerable(Rows(validation, float.MinValue, float.MaxValue), schema) : null;
        progress?.Report(new GbtProgress(0, o.MaxTrees, double.NaN, double.NaN));

        TreeEnsemble<RegressionTree> ensemble;
        ITransformer transformer;
        if (o.Trainer == TreeTrainers.LightGbm)
        {
            var trainer = ml.Regression.Trainers.LightGbm(new LightGbmRegressionTrainer.Options
            {
                LabelColumnName = nameof(Row.Label),
                FeatureColumnName = nameof(Row.Features),
                NumberOfIterations = o.MaxTrees,
                LearningRate = o.LearningRate,
                NumberOfLeaves = o.Leaves,
                MinimumExampleCountPerLeaf = o.MinRowsPerLeaf,
                MaximumBinCountPerFeature = 255,
                HandleMissingValue = false,
                UseCategoricalSplit = false,
                EarlyStoppingRound = validView is null ? 0 : o.EarlyStoppingRounds,
                EvaluationMetric = LightGbmRegressionTrainer.Options.EvaluateMetricType.MeanAbsoluteError,
                Seed = o.Seed,
                Deterministic = true,
                Silent = true,
                Booster = new GradientBooster.Options
                {
                    SubsampleFraction = o.RowFraction,
                    SubsampleFrequency = o.RowFraction < 1 ? 1 : 0,
                    FeatureFraction = o.FeatureFraction,
                    L2Regularization = o.L2,
                },
            });
            var model = validView is null ? trainer.Fit(trainView) : trainer.Fit(trainView, validView);
            ensemble = model.Model.TrainedTreeEnsemble;
            transformer = model;
        }
        else
        {
            var trainer = ml.Regression.Trainers.FastTree(new FastTreeRegressionTrainer.Options
            {
                LabelColumnName = nameof(Row.Label),
                FeatureColumnName = nameof(Row.Features),
                NumberOfTrees = o.MaxTrees,
                LearningRate = o.LearningRate,
                NumberOfLeaves = o.Leaves,
                MinimumExampleCountPerLeaf = o.MinRowsPerLeaf,
                MaximumBinCountPerFeature = 255,
                FeatureFraction = o.FeatureFraction,
                BaggingSize = o.RowFraction < 1 ? 1 : 0,
                BaggingExampleFraction = o.RowFraction,
                CategoricalSplit = false,
                NumberOfThreads = 1,
                Seed = o.Seed,
                FeatureSelectionSeed = o.Seed,
                // All rounds, then the ensemble is cut back to its best round on the validation rows (FastTree's
                // "pruning"); its early-stopping rules stopped after a handful of trees on our data.
                EarlyStoppingMetric = EarlyStoppingMetric.L1Norm,
                EnablePruning = validView is not null,
                UseTolerantPruning = false,
            });
            var model = validView is null ? trainer.Fit(trainView) : trainer.Fit(trainView, validView);
            ensemble = model.Model.TrainedTreeEnsemble;
            transformer = model;
        }

        cancellationToken.ThrowIfCancellationRequested();
        var converted = Convert(ensemble, train.FeatureNames);
        Check(ml, transformer, converted, validation is { Rows: > 0 } ? validation : train, schema);
        var validationLoss = new List<double>();
        if (validation is { Rows: > 0 })
        {
            var sum = 0.0;
            for (var r = 0; r < validation.Rows; r++)
            {
                sum += Math.Abs(validation.Targets[r] - converted.Predict(validation.Row(r)));
            }

            validationLoss.Add(sum / validation.Rows);
        }

        progress?.Report(new GbtProgress(converted.TreeCount, o.MaxTrees, double.NaN, validationLoss.Count > 0 ? validationLoss[0] : double.NaN));
        return new GbtTrainingResult(converted, converted.TreeCount, converted.TreeCount < o.MaxTrees, [], validationLoss);
    }

    private static IEnumerable<Row> Rows(Dataset data, float lo, float hi)
    {
        for (var r = 0; r < data.Rows; r++)
        {
            var source = data.Row(r);
            var features = new float[source.Length];
            for (var c = 0; c < features.Length; c++)
            {
                features[c] = float.IsNaN(source[c]) ? float.MinValue : source[c];
            }

            yield return new Row { Features = features, Label = Math.Clamp(data.Targets[r], lo, hi) };
        }
    }

    private static (float Lo, float Hi) ClipRange(ReadOnlySpan<float> targets, double share)
    {
        if (share >= 1 || targets.Length < 100)
        {
            return (float.MinValue, float.MaxValue);
        }

        var sorted = targets.ToArray();
        Array.Sort(sorted);
        var tail = (1 - share) / 2;
        return (sorted[(int)(tail * (sorted.Length - 1))], sorted[(int)((1 - tail) * (sorted.Length - 1))]);
    }

    /// <summary>Converts an ML.NET ensemble (numerical splits only) into a <see cref="GbtModel"/>.</summary>
    internal static GbtModel Convert(TreeEnsemble<RegressionTree> ensemble, string[] featureNames)
    {
        ArgumentNullException.ThrowIfNull(ensemble);
        var roots = new List<int>();
        var feature = new List<int>();
        var threshold = new List<float>();
        var left = new List<int>();
        var right = new List<int>();
        var value = new List<double>();
        var pending = new Queue<(int Source, int Slot)>();
        for (var t = 0; t < ensemble.Trees.Count; t++)
        {
            var tree = ensemble.Trees[t];
            var weight = ensemble.TreeWeights[t];
            int NewSlot()
            {
                feature.Add(-1);
                threshold.Add(0);
                left.Add(-1);
                right.Add(-1);
                value.Add(0);
                return feature.Count - 1;
            }

            var root = NewSlot();
            roots.Add(root);
            // ML.NET numbers internal nodes 0.. and leaves by ~index; a tree without splits is its one leaf.
            pending.Enqueue((tree.NumberOfNodes == 0 ? ~0 : 0, root));
            while (pending.TryDequeue(out var item))
            {
                if (item.Source < 0)
                {
                    value[item.Slot] = weight * tree.LeafValues[~item.Source];
                    continue;
                }

                if (tree.CategoricalSplitFlags[item.Source])
                {
                    throw new InvalidOperationException("the ML.NET trees use a categorical split; Fleet's features are numerical");
                }

                var l = NewSlot();
                var r = NewSlot();
                feature[item.Slot] = tree.NumericalSplitFeatureIndexes[item.Source];
                threshold[item.Slot] = tree.NumericalSplitThresholds[item.Source];
                left[item.Slot] = l;
                right[item.Slot] = r;
                pending.Enqueue((tree.LeftChild[item.Source], l));
                pending.Enqueue((tree.RightChild[item.Source], r));
            }
        }

        return new GbtModel(
            GbtLoss.Squared, featureNames, ensemble.Bias, [.. roots], [.. feature], [.. threshold], [.. left], [.. right], [.. value]);
    }

    private static void Check(MLContext ml, ITransformer transformer, GbtModel converted, Dataset data, SchemaDefinition schema)
    {
        var n = Math.Min(data.Rows, 2_000);
        var rows = new List<Row>(n);
        var step = Math.Max(1, data.Rows / n);
        for (var r = 0; r < data.Rows && rows.Count < n; r += step)
        {
            var features = data.Row(r).ToArray();
            for (var c = 0; c < features.Length; c++)
            {
                features[c] = float.IsNaN(features[c]) ? float.MinValue : features[c];
            }

            rows.Add(new Row { Features = features, Label = 0 });
        }

        var scored = transformer.Transform(ml.Data.LoadFromEnumerable(rows, schema));
        var scores = scored.GetColumn<float>("Score").ToArray();
        for (var i = 0; i < rows.Count; i++)
        {
            // The converted trees see NaN where ML.NET saw float.MinValue.
            var original = data.Row(i * step);
            var ours = converted.Predict(original);
            if (Math.Abs(ours - scores[i]) > 1e-3 * (1 + Math.Abs(scores[i])))
            {
                throw new InvalidOperationException(
                    $"the converted trees disagree with ML.NET on row {i * step}: {ours} against {scores[i]}");
            }
        }
    }
}
