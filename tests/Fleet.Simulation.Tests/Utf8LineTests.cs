using System.Globalization;
using System.Text;
using Fleet.Simulation.Output;

namespace Fleet.Simulation.Tests;

public sealed class Utf8LineTests
{
    // The oracles are the BCL's string formatting (invariant culture) and, for fixed-point numbers, integer division
    // and remainder: independent of the span formatting the line buffer uses.
    private static readonly long[] Samples = MakeSamples();

    [Fact]
    public void AppendScaled_ManyValues_IntegerPartPointAndPaddedFraction()
    {
        var line = new Utf8Line(16);
        foreach (var decimals in new[] { 0, 1, 2, 6 })
        {
            var scale = (long)Math.Pow(10, decimals);
            foreach (var scaled in Samples)
            {
                var magnitude = Math.Abs(scaled);
                var expected = (scaled < 0 ? "-" : string.Empty) + (magnitude / scale).ToString(CultureInfo.InvariantCulture)
                    + (decimals > 0 ? "." + (magnitude % scale).ToString(CultureInfo.InvariantCulture).PadLeft(decimals, '0') : string.Empty);
                line.Clear();
                line.Append((byte)'x').AppendScaled(scaled, decimals);
                Assert.Equal("x" + expected, Encoding.ASCII.GetString(line.Written));
            }
        }
    }

    [Fact]
    public void AppendIntAndPadded_ManyValues_AsInvariantToString()
    {
        var line = new Utf8Line(4);
        foreach (var value in Samples)
        {
            line.Clear();
            line.AppendInt(value);
            Assert.Equal(value.ToString(CultureInfo.InvariantCulture), Encoding.ASCII.GetString(line.Written));
            if (value >= 0)
            {
                line.Clear();
                line.AppendPadded(value, 4);
                Assert.Equal(value.ToString("D4", CultureInfo.InvariantCulture), Encoding.ASCII.GetString(line.Written));
            }
        }
    }

    [Fact]
    public void AppendFixed_RoundsHalfAwayFromZero()
    {
        // 0.125 and 2.5 are exact in binary, so these are true midpoints.
        var line = new Utf8Line();
        line.AppendFixed(0.125, 2).Append((byte)' ').AppendFixed(-0.125, 2).Append((byte)' ').AppendFixed(2.5, 0)
            .Append((byte)' ').AppendFixed(-0.001, 2).Append((byte)' ').AppendFixed(60.1234565, 6);
        Assert.Equal("0.13 -0.13 3 0.00 60.123457", Encoding.ASCII.GetString(line.Written));
    }

    [Fact]
    public void AppendBase64_ManyLengths_AsConvert()
    {
        var rng = new Random(5);
        var line = new Utf8Line(8);
        for (var n = 0; n < 300; n += 7)
        {
            var bytes = new byte[n];
            rng.NextBytes(bytes);
            line.Clear();
            line.AppendBase64(bytes);
            Assert.Equal(Convert.ToBase64String(bytes), Encoding.ASCII.GetString(line.Written));
        }
    }

    private static long[] MakeSamples()
    {
        var rng = new Random(11);
        var values = new List<long> { 0, 1, 5, 9, 10, 99, 100, 999_999, 1_000_000, 60_170_000, -1, -5, -10, -123_456_789, long.MaxValue };
        for (var k = 0; k < 500; k++)
        {
            values.Add(rng.NextInt64(-100_000_000_000, 100_000_000_000) / (long)Math.Pow(10, rng.Next(0, 11)));
        }

        return [.. values];
    }
}
