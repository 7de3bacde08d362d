namespace Fleet.Predict.Learning;

/// <summary>
/// A small deterministic pseudo-random generator (PCG-XSH-RR, 64-bit state, 32-bit output) so that training
/// is reproducible across runtimes: <see cref="Random"/> with a seed is not guaranteed stable between .NET versions.
/// </summary>
/// <remarks>Not thread-safe; a mutable struct, so pass it by reference.</remarks>
public struct Pcg32
{
    private const ulong Multiplier = 6364136223846793005UL;
    private ulong _state;
    private readonly ulong _increment;

    /// <summary>Creates a generator for <paramref name="seed"/> on stream <paramref name="stream"/>.</summary>
    public Pcg32(ulong seed, ulong stream = 54)
    {
        _increment = (stream << 1) | 1UL;
        _state = 0;
        NextUInt();
        unchecked
        {
            _state += seed;
        }

        NextUInt();
    }

    /// <summary>The next uniformly distributed 32-bit value.</summary>
    public uint NextUInt()
    {
        unchecked
        {
            var old = _state;
            _state = (old * Multiplier) + _increment;
            var xorShifted = (uint)(((old >> 18) ^ old) >> 27);
            var rot = (int)(old >> 59);
            return (xorShifted >> rot) | (xorShifted << ((-rot) & 31));
        }
    }

    /// <summary>A uniform double in [0, 1) with 53 bits of randomness.</summary>
    public double NextDouble()
    {
        unchecked
        {
            var hi = (ulong)NextUInt() >> 5;  // 27 bits
            var lo = (ulong)NextUInt() >> 6;  // 26 bits
            return ((hi << 26) | lo) * (1.0 / (1UL << 53));
        }
    }

    /// <summary>A uniform integer in [0, <paramref name="maxExclusive"/>) without modulo bias (Lemire's method).</summary>
    public int NextInt(int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(maxExclusive, 0);
        unchecked
        {
            var range = (uint)maxExclusive;
            var m = (ulong)NextUInt() * range;
            var low = (uint)m;
            if (low < range)
            {
                var threshold = (0u - range) % range;
                while (low < threshold)
                {
                    m = (ulong)NextUInt() * range;
                    low = (uint)m;
                }
            }

            return (int)(m >> 32);
        }
    }

    /// <summary>A standard normal variate (Box-Muller; one of the pair is discarded for simplicity).</summary>
    public double NextGaussian()
    {
        double u1;
        do
        {
            u1 = NextDouble();
        }
        while (u1 <= double.Epsilon);

        var u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>Fisher-Yates shuffle of <paramref name="items"/>.</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (var i = items.Length - 1; i > 0; i--)
        {
            var j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
