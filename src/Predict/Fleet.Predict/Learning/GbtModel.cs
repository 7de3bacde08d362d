using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
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

    // The deepest tree's depth: bounds the stack of pending subtrees in PredictMany.
    private readonly int _maxDepth;

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
        for (var i = 0; i < feature.Length; i++)
        {
            _nodes[i] = new Node(feature[i], threshold[i], left[i]);
        }

        var stack = new Stack<(int Node, int Depth)>();
        foreach (var root in roots)
        {
            stack.Push((root, 0));
            while (stack.TryPop(out var top))
            {
                if (feature[top.Node] < 0)
                {
                    _maxDepth = Math.Max(_maxDepth, top.Depth);
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

    /// <summary>Rows evaluated together by <see cref="PredictMany"/>: one bit each in a 64-bit row set.</summary>
    private const int BlockRows = 64;

    /// <summary>
    /// Predicts <paramref name="rows"/> rows of a row-major table into <paramref name="output"/>. Results equal
    /// <see cref="Predict"/> bit for bit: every row sums the base score and one leaf value per tree, in tree order.
    /// </summary>
    /// <remarks>
    /// <para>Tree by tree, the rows descend together as a set (a 64-bit mask): at an internal node one vector compare
    /// of the node's feature column against its threshold splits the set into the rows going right and the rest, and
    /// only non-empty halves are visited. Rows of one vehicle share most features (delay, time of day, route...), so a
    /// tree is mostly walked once for all of them; a node costs ⌈rows/8⌉ compares however many rows reach it, and no
    /// row takes a dependent load per level.</para>
    /// <para>The comparison is the scalar walk's <c>x &gt; threshold</c> (ordered: NaN goes left), and each row gets
    /// exactly one addition per tree, trees in order, so the sums are the scalar walk's to the last bit.</para>
    /// <para>Allocation-free for up to 4,096 floats per block (64 rows × 64 features); beyond that a pooled buffer.</para>
    /// </remarks>
    public void PredictMany(ReadOnlySpan<float> features, int rows, Span<double> output)
    {
        var columns = FeatureNames.Count;
        if (rows < 0 || features.Length < rows * columns || output.Length < rows)
        {
            ThrowTooFewFeatures(features.Length);
        }

        output[..rows].Fill(BaseScore);
        if (rows == 0)
        {
            return;
        }

        // Column-major copy of one block: column c of the block is [c × stride, c × stride + stride), padded with
        // zeros to whole vectors (the padding lanes are masked off by the row set).
        var size = columns * BlockRows;
        float[]? rented = null;
        var block = size <= 4096 ? stackalloc float[size] : (rented = System.Buffers.ArrayPool<float>.Shared.Rent(size));
        var shallow = _maxDepth < 256; // a model file may hold a degenerate deep tree: no large stackalloc then
        var pendingNode = shallow ? stackalloc int[_maxDepth + 1] : new int[_maxDepth + 1];
        var pendingRows = shallow ? stackalloc ulong[_maxDepth + 1] : new ulong[_maxDepth + 1];
        for (var start = 0; start < rows; start += BlockRows)
        {
            var count = Math.Min(BlockRows, rows - start);
            var stride = (count + 7) & ~7;
            for (var c = 0; c < columns; c++)
            {
                var column = block.Slice(c * stride, stride);
                for (var r = 0; r < count; r++)
                {
                    column[r] = features[((start + r) * columns) + c];
                }

                column[count..].Clear();
            }

            Descend(block, stride, count, output.Slice(start, count), pendingNode, pendingRows);
        }

        if (rented is not null)
        {
            System.Buffers.ArrayPool<float>.Shared.Return(rented);
        }
    }

    // Index arithmetic here cannot overflow (a block is at most 64 rows of the model's columns); the project checks
    // overflow by default, which would put a test and branch on every node.
    private void Descend(Span<float> block, int stride, int count, Span<double> output, Span<int> pendingNode, Span<ulong> pendingRows)
    {
        unchecked
        {
            var all = count == BlockRows ? ulong.MaxValue : (1UL << count) - 1;
            var vectors = stride / 8;
            ref var nodes = ref MemoryMarshal.GetArrayDataReference(_nodes);
            ref var values = ref MemoryMarshal.GetArrayDataReference(_value);
            ref var x0 = ref MemoryMarshal.GetReference(block);
            ref var out0 = ref MemoryMarshal.GetReference(output);
            ref var stackNode = ref MemoryMarshal.GetReference(pendingNode);
            ref var stackRows = ref MemoryMarshal.GetReference(pendingRows);
            foreach (var root in _roots)
            {
                var n = root;
                var set = all;
                var depth = 0;
                while (true)
                {
                    ref readonly var node = ref Unsafe.Add(ref nodes, n);
                    if (node.Feature >= 0)
                    {
                        var right = Greater(ref Unsafe.Add(ref x0, node.Feature * stride), node.Threshold, vectors) & set;
                        var left = set & ~right;
                        if (left == 0)
                        {
                            n = node.Left + 1;
                            continue;
                        }

                        if (right != 0)
                        {
                            // Both halves are non-empty: the right one waits (at most one per level on the path).
                            Unsafe.Add(ref stackNode, depth) = node.Left + 1;
                            Unsafe.Add(ref stackRows, depth) = right;
                            depth++;
                        }

                        n = node.Left;
                        set = left;
                        continue;
                    }

                    var value = Unsafe.Add(ref values, n);
                    do
                    {
                        Unsafe.Add(ref out0, BitOperations.TrailingZeroCount(set)) += value;
                        set &= set - 1;
                    }
                    while (set != 0);

                    if (depth == 0)
                    {
                        break;
                    }

                    depth--;
                    n = Unsafe.Add(ref stackNode, depth);
                    set = Unsafe.Add(ref stackRows, depth);
                }
            }
        }
    }

    /// <summary>Bit r set when <c>column[r] &gt; threshold</c>, for the first <paramref name="vectors"/> × 8 rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Greater(ref float column, float threshold, int vectors)
    {
        unchecked
        {
            ulong mask = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                var t = Vector256.Create(threshold);
                for (var v = 0; v < vectors; v++)
                {
                    var x = Vector256.LoadUnsafe(ref column, (nuint)(v * 8));
                    mask |= (ulong)Vector256.GreaterThan(x, t).ExtractMostSignificantBits() << (v * 8);
                }
            }
            else if (Vector128.IsHardwareAccelerated)
            {
                var t = Vector128.Create(threshold);
                for (var v = 0; v < vectors * 2; v++)
                {
                    var x = Vector128.LoadUnsafe(ref column, (nuint)(v * 4));
                    mask |= (ulong)Vector128.GreaterThan(x, t).ExtractMostSignificantBits() << (v * 4);
                }
            }
            else
            {
                for (var r = 0; r < vectors * 8; r++)
                {
                    if (Unsafe.Add(ref column, r) > threshold)
                    {
                        mask |= 1UL << r;
                    }
                }
            }

            return mask;
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
