using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Fleet.Predict.Learning;

/// <summary>
/// A trained gradient-boosted ensemble of binary regression trees: prediction = base score + Σ tree outputs
/// (the learning rate is already folded into the leaf values).
/// </summary>
/// <remarks>
/// <para>Trees are stored as flat arrays; node <c>i</c> is a leaf when <c>Feature[i] &lt; 0</c>, otherwise a row goes
/// left when <c>!(x[Feature[i]] &gt; Threshold[i])</c> (so NaN goes left). Immutable; thread-safe.</para>
/// <para>File format, version 1 (little endian):</para>
/// <code>
/// "FLEETGBT"         8 bytes magic
/// u16 version        = 1
/// i32 payloadLength
/// payload:           u8 loss, i32 features, features × string (7-bit length-prefixed UTF-8),
///                    f64 baseScore, i32 trees, i32 nodes, trees × i32 root,
///                    nodes × (i32 feature, f32 threshold, i32 left, i32 right, f64 value)
/// u64 FNV-1a hash of the payload
/// </code>
/// </remarks>
public sealed class GbtModel
{
    /// <summary>The file magic.</summary>
    public static ReadOnlySpan<byte> Magic => "FLEETGBT"u8;

    /// <summary>The file format version this build writes and reads.</summary>
    public const ushort FormatVersion = 1;

    private readonly int[] _roots;
    private readonly int[] _feature;
    private readonly float[] _threshold;
    private readonly int[] _left;
    private readonly int[] _right;
    private readonly double[] _value;

    // The evaluation layout: one 12-byte struct per node, children adjacent (right = left + 1), so a step down
    // the tree is one load and a compare-and-add instead of two dependent loads and a branch.
    private readonly Node[] _nodes;

    // The same nodes for level-synchronous batch evaluation: a leaf steps to itself (feature 0, threshold +∞, left =
    // itself; nothing is greater than +∞, NaN included), so every row takes exactly its tree's depth in steps with
    // no exit branch, and the rows' steps at one level are independent loads the CPU overlaps.
    private readonly Node[] _steps;
    private readonly int[] _depth;
    private readonly bool _branchFree = true;

    [StructLayout(LayoutKind.Sequential)]
    private readonly struct Node(int feature, float threshold, int left)
    {
        public readonly int Feature = feature;
        public readonly float Threshold = threshold;
        public readonly int Left = left;
    }

    internal GbtModel(
        GbtLoss loss, string[] featureNames, double baseScore,
        int[] roots, int[] feature, float[] threshold, int[] left, int[] right, double[] value)
    {
        Loss = loss;
        FeatureNames = featureNames;
        BaseScore = baseScore;
        _roots = roots;
        _feature = feature;
        _threshold = threshold;
        _left = left;
        _right = right;
        _value = value;
        Validate();
        _nodes = new Node[feature.Length];
        _steps = new Node[feature.Length];
        for (var i = 0; i < feature.Length; i++)
        {
            _nodes[i] = new Node(feature[i], threshold[i], left[i]);
            _steps[i] = feature[i] < 0 ? new Node(0, float.PositiveInfinity, i) : _nodes[i];
            if (feature[i] >= 0 && (!float.IsFinite(threshold[i]) || float.IsNegative(threshold[i]) && threshold[i] == 0))
            {
                _branchFree = false; // the sign-bit step is exact only for finite thresholds other than −0
            }
        }

        _depth = new int[roots.Length];
        var stack = new Stack<(int Node, int Depth)>();
        for (var t = 0; t < roots.Length; t++)
        {
            stack.Push((roots[t], 0));
            while (stack.TryPop(out var top))
            {
                if (feature[top.Node] < 0)
                {
                    _depth[t] = Math.Max(_depth[t], top.Depth);
                    continue;
                }

                stack.Push((left[top.Node], top.Depth + 1));
                stack.Push((right[top.Node], top.Depth + 1));
            }
        }
    }

    /// <summary>The loss the model was trained with.</summary>
    public GbtLoss Loss { get; }

    /// <summary>Names of the features, in input order.</summary>
    public IReadOnlyList<string> FeatureNames { get; }

    /// <summary>Number of input features.</summary>
    public int FeatureCount => FeatureNames.Count;

    /// <summary>The constant every prediction starts from.</summary>
    public double BaseScore { get; }

    /// <summary>Number of trees.</summary>
    public int TreeCount => _roots.Length;

    /// <summary>Number of nodes in all trees.</summary>
    public int NodeCount => _feature.Length;

    /// <summary>Predicts one row.</summary>
    public double Predict(ReadOnlySpan<float> features)
    {
        if (features.Length < FeatureNames.Count)
        {
            ThrowTooFewFeatures(features.Length);
        }

        var sum = BaseScore;
        ref var nodes = ref MemoryMarshal.GetArrayDataReference(_nodes);
        ref var x = ref MemoryMarshal.GetReference(features);
        var roots = _roots;
        var values = _value;
        for (var t = 0; t < roots.Length; t++)
        {
            sum += values[Leaf(ref nodes, ref x, roots[t])];
        }

        return sum;
    }

    /// <summary>
    /// Predicts <paramref name="rows"/> rows of a row-major table into <paramref name="output"/>, tree by tree and
    /// level by level (each tree stays in cache for all rows; every row steps down one level before any steps
    /// further, so the steps are independent loads without an exit branch to mispredict). Results equal <see cref="Predict"/>
    /// bit for bit: every row sums the same terms in the same order.
    /// </summary>
    public void PredictMany(ReadOnlySpan<float> features, int rows, Span<double> output)
    {
        var columns = FeatureNames.Count;
        if (rows < 0 || features.Length < rows * columns || output.Length < rows)
        {
            ThrowTooFewFeatures(features.Length);
        }

        output[..rows].Fill(BaseScore);
        if (!_branchFree)
        {
            for (var r = 0; r < rows; r++)
            {
                output[r] = Predict(features.Slice(r * columns, columns));
            }

            return;
        }

        ref var steps = ref MemoryMarshal.GetArrayDataReference(_steps);
        ref var x0 = ref MemoryMarshal.GetReference(features);
        ref var values = ref MemoryMarshal.GetArrayDataReference(_value);
        var roots = _roots;
        var depths = _depth;
        Span<int> at = rows <= 256 ? stackalloc int[rows] : new int[rows];
        ref var a0 = ref MemoryMarshal.GetReference(at);

        // NaN goes left; so does −∞, and −∞ makes the step below branch-free: x > t exactly when t − x is negative
        // (two distinct finite floats never subtract to zero; t − (−∞) = +∞, t − (+∞) = −∞), so the sign bit of
        // t − x is the step. The rows are copied with NaN replaced; the leaves (and sums) equal Predict's.
        var n = rows * columns;
        float[]? rented = null;
        Span<float> clean = n <= 4096 ? stackalloc float[n] : (rented = System.Buffers.ArrayPool<float>.Shared.Rent(n));
        for (var i = 0; i < n; i++)
        {
            var v = Unsafe.Add(ref x0, i);
            clean[i] = float.IsNaN(v) ? float.NegativeInfinity : v;
        }

        ref var c0 = ref MemoryMarshal.GetReference(clean);
        Walk(roots, depths, ref steps, ref values, ref c0, columns, rows, ref a0, output);
        if (rented is not null)
        {
            System.Buffers.ArrayPool<float>.Shared.Return(rented);
        }
    }

    // Index arithmetic here cannot overflow (rows × columns fits the caller's span); the project checks overflow by
    // default, which would put a test and branch on every step.
    private static void Walk(int[] roots, int[] depths, ref Node steps, ref double values, ref float c0, int columns, int rows, ref int a0, Span<double> output)
    {
        unchecked
        {
        for (var t = 0; t < roots.Length; t++)
        {
            for (var r = 0; r < rows; r++)
            {
                Unsafe.Add(ref a0, r) = roots[t];
            }

            for (var d = depths[t]; d > 0; d--)
            {
                // One level of every row: independent loads, no branch on the way down (leaves step to themselves).
                for (var r = 0; r < rows; r++)
                {
                    ref var slot = ref Unsafe.Add(ref a0, r);
                    ref readonly var node = ref Unsafe.Add(ref steps, slot);
                    var diff = node.Threshold - Unsafe.Add(ref c0, (r * columns) + node.Feature);
                    slot = node.Left + unchecked((int)((uint)BitConverter.SingleToInt32Bits(diff) >> 31));
                }
            }

            for (var r = 0; r < rows; r++)
            {
                output[r] += Unsafe.Add(ref values, Unsafe.Add(ref a0, r));
            }
        }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Leaf(ref Node nodes, ref float x, int n)
    {
        // Validate() guaranteed every feature index < FeatureCount and every child index in range, and the callers
        // checked the row length, so the unchecked reads stay inside the arrays.
        while (true)
        {
            ref readonly var node = ref Unsafe.Add(ref nodes, n);
            var f = node.Feature;
            if (f < 0)
            {
                return n;
            }

            n = node.Left + (Unsafe.Add(ref x, f) > node.Threshold ? 1 : 0);
        }
    }

    /// <summary>Writes the model to <paramref name="stream"/> in the versioned format.</summary>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var payload = new MemoryStream();
        using (var w = new BinaryWriter(payload, Encoding.UTF8, leaveOpen: true))
        {
            w.Write((byte)Loss);
            w.Write(FeatureNames.Count);
            foreach (var name in FeatureNames)
            {
                w.Write(name);
            }

            w.Write(BaseScore);
            w.Write(_roots.Length);
            w.Write(_feature.Length);
            foreach (var root in _roots)
            {
                w.Write(root);
            }

            for (var i = 0; i < _feature.Length; i++)
            {
                w.Write(_feature[i]);
                w.Write(_threshold[i]);
                w.Write(_left[i]);
                w.Write(_right[i]);
                w.Write(_value[i]);
            }
        }

        var bytes = payload.GetBuffer().AsSpan(0, (int)payload.Length);
        using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        writer.Write(Magic);
        writer.Write(FormatVersion);
        writer.Write(bytes.Length);
        writer.Write(bytes);
        writer.Write(Fnv1a(bytes));
    }

    /// <summary>Writes the model to a file.</summary>
    public void Save(string path)
    {
        using var stream = File.Create(path);
        Save(stream);
    }

    /// <summary>Reads a model from a file.</summary>
    /// <exception cref="InvalidDataException">The file is not a model, has an unsupported version, or is corrupt.</exception>
    public static GbtModel Load(string path)
    {
        using var stream = File.OpenRead(path);
        return Load(stream, path);
    }

    /// <summary>Reads a model from <paramref name="stream"/>; <paramref name="source"/> names it in error messages.</summary>
    /// <exception cref="InvalidDataException">The data is not a model, has an unsupported version, or is corrupt.</exception>
    public static GbtModel Load(Stream stream, string source = "stream")
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var reader = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        Span<byte> magic = stackalloc byte[8];
        if (ReadFully(stream, magic) != magic.Length || !magic.SequenceEqual(Magic))
        {
            throw new InvalidDataException($"{source}: not a Fleet gradient-boosted tree model (the file does not start with \"FLEETGBT\")");
        }

        try
        {
            var version = reader.ReadUInt16();
            if (version != FormatVersion)
            {
                throw new InvalidDataException(
                    $"{source}: model format version {version} is not supported (this build reads version {FormatVersion})");
            }

            var length = reader.ReadInt32();
            if (length < 0 || (stream.CanSeek && length > stream.Length - stream.Position))
            {
                throw new InvalidDataException($"{source}: corrupt model (payload length {length} exceeds the file)");
            }

            var payload = reader.ReadBytes(length);
            if (payload.Length != length)
            {
                throw new InvalidDataException($"{source}: corrupt model (truncated payload)");
            }

            var hash = reader.ReadUInt64();
            if (hash != Fnv1a(payload))
            {
                throw new InvalidDataException($"{source}: corrupt model (checksum mismatch)");
            }

            return ReadPayload(payload, source);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"{source}: corrupt model (truncated)", e);
        }
    }

    private static GbtModel ReadPayload(byte[] payload, string source)
    {
        using var r = new BinaryReader(new MemoryStream(payload), Encoding.UTF8);
        try
        {
            var loss = (GbtLoss)r.ReadByte();
            var features = r.ReadInt32();
            CheckCount(features, payload.Length, source, "feature count");
            var names = new string[features];
            for (var i = 0; i < features; i++)
            {
                names[i] = r.ReadString();
            }

            var baseScore = r.ReadDouble();
            var trees = r.ReadInt32();
            var nodes = r.ReadInt32();
            CheckCount(trees, payload.Length / 4, source, "tree count");
            CheckCount(nodes, payload.Length / 24, source, "node count");
            var roots = new int[trees];
            for (var i = 0; i < trees; i++)
            {
                roots[i] = r.ReadInt32();
            }

            var feature = new int[nodes];
            var threshold = new float[nodes];
            var left = new int[nodes];
            var right = new int[nodes];
            var value = new double[nodes];
            for (var i = 0; i < nodes; i++)
            {
                feature[i] = r.ReadInt32();
                threshold[i] = r.ReadSingle();
                left[i] = r.ReadInt32();
                right[i] = r.ReadInt32();
                value[i] = r.ReadDouble();
            }

            return new GbtModel(loss, names, baseScore, roots, feature, threshold, left, right, value);
        }
        catch (Exception e) when (e is EndOfStreamException or ArgumentException)
        {
            throw new InvalidDataException($"{source}: corrupt model ({e.Message})", e);
        }
    }

    private static void CheckCount(int count, int max, string source, string what)
    {
        if (count < 0 || count > max)
        {
            throw new InvalidDataException($"{source}: corrupt model ({what} {count} out of range)");
        }
    }

    private void Validate()
    {
        if (Loss is not (GbtLoss.Squared or GbtLoss.Absolute))
        {
            throw new ArgumentException($"unknown loss {(int)Loss}");
        }

        var nodes = _feature.Length;
        foreach (var root in _roots)
        {
            if ((uint)root >= (uint)nodes)
            {
                throw new ArgumentException($"tree root {root} out of range");
            }
        }

        for (var i = 0; i < nodes; i++)
        {
            if (_feature[i] < 0)
            {
                if (!double.IsFinite(_value[i]))
                {
                    throw new ArgumentException($"leaf {i} has a non-finite value");
                }

                continue;
            }

            // Children always come after their parent, so traversal cannot loop.
            if (_feature[i] >= FeatureNames.Count || _left[i] <= i || _right[i] != _left[i] + 1 || _right[i] >= nodes)
            {
                throw new ArgumentException($"node {i} is malformed");
            }
        }
    }

    private static int ReadFully(Stream stream, Span<byte> buffer)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = stream.Read(buffer[total..]);
            if (n == 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }

    private static ulong Fnv1a(ReadOnlySpan<byte> data)
    {
        unchecked
        {
            var h = 14695981039346656037UL;
            foreach (var b in data)
            {
                h = (h ^ b) * 1099511628211UL;
            }

            return h;
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowTooFewFeatures(int got) =>
        throw new ArgumentException($"the model needs {FeatureNames.Count} features, got {got}");
}
