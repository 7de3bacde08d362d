using System.Numerics;

namespace Fleet.Simulation;

/// <summary>
/// A small, fully specified pseudo-random generator (xoshiro256** seeded through SplitMix64), so that a
/// seed gives the same sequence on every runtime and platform.
/// </summary>
/// <remarks>
/// <see cref="System.Random"/> is not used because its algorithm is unspecified and has changed between
/// .NET versions; the generator's output is part of the file format of <c>fleet generate</c>.
/// Not thread-safe: each simulated component forks its own stream with <see cref="Fork"/>.
/// </remarks>
public sealed class SimRandom
{
    private ulong _s0;
    private ulong _s1;
    private ulong _s2;
    private ulong _s3;
    private double _spareNormal = double.NaN;

    /// <summary>Creates a generator from a seed.</summary>
    public SimRandom(ulong seed)
    {
        var sm = seed;
        _s0 = SplitMix(ref sm);
        _s1 = SplitMix(ref sm);
        _s2 = SplitMix(ref sm);
        _s3 = SplitMix(ref sm);
    }

    /// <summary>Creates an independent stream derived from a seed and one or more salts.</summary>
    public static SimRandom Create(ulong seed, params ReadOnlySpan<ulong> salts) => new(Mix(seed, salts));

    /// <summary>Hashes a seed and salts into one 64-bit value (stable across runs and platforms).</summary>
    public static ulong Mix(ulong seed, params ReadOnlySpan<ulong> salts)
    {
        var h = seed ^ 0x9E3779B97F4A7C15UL;
        foreach (var s in salts)
        {
            h = Finalize(h ^ Finalize(s + 0x632BE59BD9B4E019UL));
        }

        return Finalize(h);
    }

    /// <summary>Creates an independent stream derived from this one's next value and a salt.</summary>
    public SimRandom Fork(ulong salt) => new(Mix(NextUInt64(), salt));

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        var result = BitOperations.RotateLeft(_s1 * 5, 7) * 9;
        var t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = BitOperations.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>A uniform double in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>A uniform double in [min, max).</summary>
    public double Uniform(double min, double max) => min + ((max - min) * NextDouble());

    /// <summary>A uniform integer in [min, max).</summary>
    public int NextInt(int min, int max)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(min, max);
        var range = (ulong)((long)max - min);
        return (int)(min + (long)(NextUInt64() % range));
    }

    /// <summary>True with probability <paramref name="p"/>.</summary>
    public bool Chance(double p) => NextDouble() < p;

    /// <summary>A standard normal deviate (Box-Muller; the second value of each pair is kept for the next call).</summary>
    public double NextNormal()
    {
        if (!double.IsNaN(_spareNormal))
        {
            var spare = _spareNormal;
            _spareNormal = double.NaN;
            return spare;
        }

        var u1 = 1.0 - NextDouble();
        var u2 = NextDouble();
        var r = Math.Sqrt(-2.0 * Math.Log(u1));
        _spareNormal = r * Math.Sin(2 * Math.PI * u2);
        return r * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>A Poisson deviate (Knuth's method for small means, a rounded normal above 30).</summary>
    public int NextPoisson(double mean)
    {
        if (mean <= 0)
        {
            return 0;
        }

        if (mean > 30)
        {
            return Math.Max(0, (int)Math.Round(mean + (Math.Sqrt(mean) * NextNormal())));
        }

        var limit = Math.Exp(-mean);
        var k = 0;
        var p = NextDouble();
        while (p > limit)
        {
            k++;
            p *= NextDouble();
        }

        return k;
    }

    /// <summary>A deterministic uniform value in [0, 1) for a key, without any generator state.</summary>
    public static double Hash01(ulong seed, params ReadOnlySpan<ulong> salts) => (Mix(seed, salts) >> 11) * (1.0 / (1UL << 53));

    private static ulong SplitMix(ref ulong state)
    {
        state += 0x9E3779B97F4A7C15UL;
        return Finalize(state);
    }

    private static ulong Finalize(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
