using System.Diagnostics;

namespace Fleet.Predict.Learning;

/// <summary>Progress of a training run, reported once per boosting round.</summary>
/// <param name="Iteration">Trees built so far.</param>
/// <param name="MaxIterations">The configured maximum.</param>
/// <param name="TrainLoss">Loss on the training rows (MSE or MAE, per the configured loss).</param>
/// <param name="ValidationLoss">Loss on the validation rows; NaN without a validation set.</param>
public readonly record struct GbtProgress(int Iteration, int MaxIterations, double TrainLoss, double ValidationLoss);

/// <summary>The outcome of <see cref="GbtTrainer.Fit"/>.</summary>
/// <param name="Model">The model, truncated to the best round when a validation set was given.</param>
/// <param name="BestIteration">Number of trees kept.</param>
/// <param name="StoppedEarly">True when early stopping ended training before the maximum number of trees.</param>
/// <param name="TrainLoss">Training loss after each round.</param>
/// <param name="ValidationLoss">Validation loss after each round (empty without a validation set).</param>
public sealed record GbtTrainingResult(
    GbtModel Model, int BestIteration, bool StoppedEarly, IReadOnlyList<double> TrainLoss, IReadOnlyList<double> ValidationLoss);

/// <summary>
/// Trains <see cref="GbtModel"/>s: histogram-based gradient boosting of regression trees grown leaf-wise
/// (best gain first) up to a depth and a leaf budget, with shrinkage, row subsampling and early stopping.
/// </summary>
/// <remarks>
/// <para>Squared loss fits each tree to the residuals and sets leaf values to the regularised mean
/// <c>-ΣG/(n+λ)</c>. Absolute loss fits the tree structure to the sign of the residuals and sets each leaf to
/// the median residual of its rows (the LAD-boosting recipe), so leaves estimate medians.</para>
/// <para>Deterministic: the only randomness is <see cref="Pcg32"/> seeded from <see cref="GbtOptions.Seed"/>,
/// and nothing runs in parallel. An instance holds no state between calls; it is thread-safe.</para>
/// </remarks>
public sealed class GbtTrainer : ITreeTrainer
{
    private readonly GbtOptions _options;

    /// <inheritdoc />
    public string Name => TreeTrainers.Gbdt;

    /// <summary>Creates a trainer with validated options.</summary>
    public GbtTrainer(GbtOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
    }

    /// <summary>Trains on <paramref name="train"/>; with <paramref name="validation"/>, stops early on its loss.</summary>
    public GbtTrainingResult Fit(
        Dataset train, Dataset? validation = null, IProgress<GbtProgress>? progress = null, CancellationToken cancellationToken = default)
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

        var run = new Run(_options, train, validation);
        return run.Execute(progress, cancellationToken);
    }

    /// <summary>State of one training run.</summary>
    private sealed class Run
    {
        private readonly GbtOptions _o;
        private readonly int _rows;
        private readonly int _cols;
        private readonly float[] _y;
        private readonly byte[] _bins;
        private readonly FeatureBinner _binner;
        private readonly int[] _binOffset;
        private readonly int _totalBins;
        private readonly double[] _pred;
        private readonly double[] _grad;
        private readonly int[] _perm;
        private readonly int[] _idx;
        private readonly int _valRows;
        private readonly float[] _valY;
        private readonly byte[] _valBins;
        private readonly double[] _valPred;
        private readonly string[] _names;
        private readonly List<double[]> _histPool = [];
        private readonly double[] _residualScratch;
        private Pcg32 _rng;

        // The ensemble being built (global node arrays).
        private readonly List<int> _roots = [];
        private readonly List<int> _feature = [];
        private readonly List<float> _threshold = [];
        private readonly List<int> _left = [];
        private readonly List<int> _right = [];
        private readonly List<double> _value = [];

        // The tree being built (local node arrays; bin thresholds for the binned traversal).
        private readonly List<int> _tFeature = [];
        private readonly List<int> _tBin = [];
        private readonly List<int> _tLeft = [];
        private readonly List<int> _tRight = [];
        private readonly List<double> _tValue = [];

        public Run(GbtOptions options, Dataset train, Dataset? validation)
        {
            _o = options;
            _rows = train.Rows;
            _cols = train.Columns;
            _names = train.FeatureNames;
            _y = train.Targets.ToArray();
            _binner = FeatureBinner.Fit(train.Features, _rows, _cols, options.MaxBins, options.Seed);
            _bins = _binner.BinAll(train.Features, _rows);
            _binOffset = new int[_cols + 1];
            for (var c = 0; c < _cols; c++)
            {
                _binOffset[c + 1] = _binOffset[c] + _binner.BinCount(c);
            }

            _totalBins = _binOffset[_cols];
            _pred = new double[_rows];
            _grad = new double[_rows];
            _perm = new int[_rows];
            for (var i = 0; i < _rows; i++)
            {
                _perm[i] = i;
            }

            var sample = Math.Max(2, (int)Math.Round(_rows * options.Subsample));
            _idx = new int[Math.Min(sample, _rows)];
            _residualScratch = new double[_rows];
            _rng = new Pcg32(options.Seed, 3);
            if (validation is { Rows: > 0 })
            {
                _valRows = validation.Rows;
                _valY = validation.Targets.ToArray();
                _valBins = _binner.BinAll(validation.Features, _valRows);
            }
            else
            {
                _valY = [];
                _valBins = [];
            }

            _valPred = new double[_valRows];
        }

        public GbtTrainingResult Execute(IProgress<GbtProgress>? progress, CancellationToken cancellationToken)
        {
            var baseScore = _o.Loss == GbtLoss.Squared ? Mean(_y) : Median(_y);
            Array.Fill(_pred, baseScore);
            Array.Fill(_valPred, baseScore);
            var trainLoss = new List<double>();
            var validationLoss = new List<double>();
            var best = double.PositiveInfinity;
            var bestTrees = 0;
            var stoppedEarly = false;
            for (var t = 0; t < _o.MaxTrees; t++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                ComputeGradients();
                SampleRows();
                BuildTree();
                AppendTree();
                ApplyTree(_bins, _rows, _pred);
                ApplyTree(_valBins, _valRows, _valPred);
                var tl = Loss(_y, _pred);
                trainLoss.Add(tl);
                var vl = double.NaN;
                if (_valRows > 0)
                {
                    vl = Loss(_valY, _valPred);
                    validationLoss.Add(vl);
                    // A relative tolerance keeps round-off wiggles from counting as improvements.
                    if (bestTrees == 0 || vl < best - (1e-12 * Math.Abs(best)))
                    {
                        best = vl;
                        bestTrees = t + 1;
                    }
                }
                else
                {
                    bestTrees = t + 1;
                }

                progress?.Report(new GbtProgress(t + 1, _o.MaxTrees, tl, vl));
                if (_valRows > 0 && _o.EarlyStoppingRounds > 0 && t + 1 - bestTrees >= _o.EarlyStoppingRounds)
                {
                    stoppedEarly = t + 1 < _o.MaxTrees;
                    break;
                }
            }

            var model = Snapshot(baseScore, bestTrees);
            return new GbtTrainingResult(model, bestTrees, stoppedEarly, trainLoss, validationLoss);
        }

        private GbtModel Snapshot(double baseScore, int trees)
        {
            var nodes = trees < _roots.Count ? _roots[trees] : _feature.Count;
            return new GbtModel(
                _o.Loss,
                _names,
                baseScore,
                [.. _roots.GetRange(0, trees)],
                [.. _feature.GetRange(0, nodes)],
                [.. _threshold.GetRange(0, nodes)],
                [.. _left.GetRange(0, nodes)],
                [.. _right.GetRange(0, nodes)],
                [.. _value.GetRange(0, nodes)]);
        }

        private void ComputeGradients()
        {
            var pred = _pred;
            var y = _y;
            var grad = _grad;
            if (_o.Loss == GbtLoss.Squared)
            {
                for (var i = 0; i < grad.Length; i++)
                {
                    grad[i] = pred[i] - y[i];
                }
            }
            else
            {
                for (var i = 0; i < grad.Length; i++)
                {
                    var d = pred[i] - y[i];
                    grad[i] = d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0;
                }
            }
        }

        private void SampleRows()
        {
            var k = _idx.Length;
            if (k < _rows)
            {
                // Partial Fisher-Yates over a persistent permutation: the first k entries are a uniform sample.
                for (var i = 0; i < k; i++)
                {
                    var j = i + _rng.NextInt(_rows - i);
                    (_perm[i], _perm[j]) = (_perm[j], _perm[i]);
                }

                Array.Copy(_perm, _idx, k);
                Array.Sort(_idx); // ascending rows scan the byte matrix in memory order
            }
            else
            {
                Array.Copy(_perm, _idx, k);
                Array.Sort(_idx);
            }
        }

        private sealed class Leaf
        {
            public int Start;
            public int End;
            public int Node;
            public int Depth;
            public double[] Hist = [];
            public double SumG;
            public int Count;
            public int SplitFeature = -1;
            public int SplitBin;
            public double SplitGain;
            public int SplitLeftCount;
        }

        private void BuildTree()
        {
            _tFeature.Clear();
            _tBin.Clear();
            _tLeft.Clear();
            _tRight.Clear();
            _tValue.Clear();
            foreach (var h in _histPool)
            {
                Debug.Assert(h.Length == _totalBins * 2, "pool holds histograms of this run only");
            }

            var root = new Leaf { Start = 0, End = _idx.Length, Node = NewNode(), Depth = 0, Hist = RentHist() };
            BuildHistogram(root.Start, root.End, root.Hist);
            Totals(root);
            FindSplit(root);
            var leaves = new List<Leaf> { root };
            while (leaves.Count < _o.MaxLeaves)
            {
                Leaf? bestLeaf = null;
                foreach (var leaf in leaves)
                {
                    if (leaf.SplitFeature >= 0 && leaf.Depth < _o.MaxDepth && (bestLeaf is null || leaf.SplitGain > bestLeaf.SplitGain))
                    {
                        bestLeaf = leaf;
                    }
                }

                if (bestLeaf is null)
                {
                    break;
                }

                leaves.Remove(bestLeaf);
                var (l, r) = Split(bestLeaf);
                leaves.Add(l);
                leaves.Add(r);
            }

            foreach (var leaf in leaves)
            {
                _tValue[leaf.Node] = LeafValue(leaf) * _o.LearningRate;
                ReturnHist(leaf.Hist);
            }
        }

        private int NewNode()
        {
            _tFeature.Add(-1);
            _tBin.Add(0);
            _tLeft.Add(-1);
            _tRight.Add(-1);
            _tValue.Add(0);
            return _tFeature.Count - 1;
        }

        private double[] RentHist()
        {
            if (_histPool.Count > 0)
            {
                var h = _histPool[^1];
                _histPool.RemoveAt(_histPool.Count - 1);
                return h;
            }

            return new double[_totalBins * 2];
        }

        private void ReturnHist(double[] h) => _histPool.Add(h);

        private void BuildHistogram(int start, int end, double[] hist)
        {
            Array.Clear(hist);
            var cols = _cols;
            var bins = _bins;
            var grad = _grad;
            var idx = _idx;
            var offsets = _binOffset;
            unchecked
            {
                for (var i = start; i < end; i++)
                {
                    var r = idx[i];
                    var g = grad[r];
                    var o = r * cols;
                    for (var c = 0; c < cols; c++)
                    {
                        var k = (offsets[c] + bins[o + c]) << 1;
                        hist[k] += g;
                        hist[k + 1] += 1.0;
                    }
                }
            }
        }

        private void Totals(Leaf leaf)
        {
            // Any one feature's bins partition the rows; feature 0 gives the totals.
            double g = 0;
            double n = 0;
            for (var b = _binOffset[0]; b < _binOffset[1]; b++)
            {
                g += leaf.Hist[b << 1];
                n += leaf.Hist[(b << 1) + 1];
            }

            leaf.SumG = g;
            leaf.Count = (int)Math.Round(n);
        }

        private void FindSplit(Leaf leaf)
        {
            leaf.SplitFeature = -1;
            leaf.SplitGain = 0;
            var minLeaf = _o.MinSamplesLeaf;
            if (leaf.Count < 2 * minLeaf)
            {
                return;
            }

            var lambda = _o.L2;
            var g = leaf.SumG;
            var n = (double)leaf.Count;
            var parent = g * g / (n + lambda);
            var hist = leaf.Hist;
            var bestGain = 1e-12 * Math.Max(1.0, parent);
            for (var c = 0; c < _cols; c++)
            {
                var first = _binOffset[c];
                var last = _binOffset[c + 1] - 1; // the last bin cannot be a left side
                double gl = 0, nl = 0;
                for (var b = first; b < last; b++)
                {
                    gl += hist[b << 1];
                    nl += hist[(b << 1) + 1];
                    if (nl < minLeaf)
                    {
                        continue;
                    }

                    var nr = n - nl;
                    if (nr < minLeaf)
                    {
                        break;
                    }

                    var gr = g - gl;
                    var gain = (gl * gl / (nl + lambda)) + (gr * gr / (nr + lambda)) - parent;
                    if (gain > bestGain)
                    {
                        bestGain = gain;
                        leaf.SplitFeature = c;
                        leaf.SplitBin = b - first;
                        leaf.SplitLeftCount = (int)Math.Round(nl);
                    }
                }
            }

            leaf.SplitGain = bestGain;
        }

        private (Leaf Left, Leaf Right) Split(Leaf leaf)
        {
            var f = leaf.SplitFeature;
            var t = leaf.SplitBin;
            var cols = _cols;
            var bins = _bins;
            var idx = _idx;
            // In-place partition of the leaf's row range: rows with bin <= t first (order kept stable is not
            // needed; the partition is deterministic, which is what matters).
            int i = leaf.Start, j = leaf.End - 1;
            while (i <= j)
            {
                if (bins[(idx[i] * cols) + f] <= t)
                {
                    i++;
                }
                else
                {
                    (idx[i], idx[j]) = (idx[j], idx[i]);
                    j--;
                }
            }

            Debug.Assert(i - leaf.Start == leaf.SplitLeftCount, "partition agrees with the histogram");
            var left = new Leaf { Start = leaf.Start, End = i, Node = NewNode(), Depth = leaf.Depth + 1 };
            var right = new Leaf { Start = i, End = leaf.End, Node = NewNode(), Depth = leaf.Depth + 1 };
            _tFeature[leaf.Node] = f;
            _tBin[leaf.Node] = t;
            _tLeft[leaf.Node] = left.Node;
            _tRight[leaf.Node] = right.Node;

            // Histogram subtraction: scan the smaller child, derive the larger from the parent.
            var (small, large) = left.End - left.Start <= right.End - right.Start ? (left, right) : (right, left);
            small.Hist = RentHist();
            BuildHistogram(small.Start, small.End, small.Hist);
            large.Hist = leaf.Hist;
            var sh = small.Hist;
            var lh = large.Hist;
            for (var k = 0; k < lh.Length; k++)
            {
                lh[k] -= sh[k];
            }

            leaf.Hist = [];
            Totals(left);
            Totals(right);
            FindSplit(left);
            FindSplit(right);
            return (left, right);
        }

        private double LeafValue(Leaf leaf)
        {
            if (_o.Loss == GbtLoss.Squared)
            {
                return -leaf.SumG / (leaf.Count + _o.L2);
            }

            var n = leaf.End - leaf.Start;
            if (n == 0)
            {
                return 0;
            }

            var scratch = _residualScratch.AsSpan(0, n);
            for (var i = 0; i < n; i++)
            {
                var r = _idx[leaf.Start + i];
                scratch[i] = _y[r] - _pred[r];
            }

            scratch.Sort();
            return (n & 1) == 1 ? scratch[n / 2] : 0.5 * (scratch[(n / 2) - 1] + scratch[n / 2]);
        }

        private void AppendTree()
        {
            var offset = _feature.Count;
            _roots.Add(offset);
            for (var n = 0; n < _tFeature.Count; n++)
            {
                var f = _tFeature[n];
                _feature.Add(f);
                _threshold.Add(f >= 0 ? _binner.Threshold(f, _tBin[n]) : 0f);
                _left.Add(f >= 0 ? _tLeft[n] + offset : -1);
                _right.Add(f >= 0 ? _tRight[n] + offset : -1);
                _value.Add(f >= 0 ? 0.0 : _tValue[n]);
            }
        }

        private void ApplyTree(byte[] bins, int rows, double[] pred)
        {
            var cols = _cols;
            for (var r = 0; r < rows; r++)
            {
                var o = r * cols;
                var n = 0;
                int f;
                while ((f = _tFeature[n]) >= 0)
                {
                    n = bins[o + f] <= _tBin[n] ? _tLeft[n] : _tRight[n];
                }

                pred[r] += _tValue[n];
            }
        }

        private double Loss(float[] y, double[] pred)
        {
            double sum = 0;
            if (_o.Loss == GbtLoss.Squared)
            {
                for (var i = 0; i < y.Length; i++)
                {
                    var d = pred[i] - y[i];
                    sum += d * d;
                }
            }
            else
            {
                for (var i = 0; i < y.Length; i++)
                {
                    sum += Math.Abs(pred[i] - y[i]);
                }
            }

            return sum / y.Length;
        }

        private static double Mean(float[] y)
        {
            double s = 0;
            foreach (var v in y)
            {
                s += v;
            }

            return s / y.Length;
        }

        private static double Median(float[] y)
        {
            var copy = (float[])y.Clone();
            Array.Sort(copy);
            var n = copy.Length;
            return (n & 1) == 1 ? copy[n / 2] : 0.5 * ((double)copy[(n / 2) - 1] + copy[n / 2]);
        }
    }
}
