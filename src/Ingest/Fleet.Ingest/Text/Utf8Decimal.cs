using System.Buffers.Text;

namespace Fleet.Ingest.Text;

/// <summary>Parses decimal numbers from UTF-8 bytes, culture-invariant, with a fast path for plain decimals.</summary>
public static class Utf8Decimal
{
    private static readonly double[] s_powersOfTen =
        [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

    /// <summary>
    /// Parses a decimal number. Plain decimals of up to 15 digits (every coordinate, speed and odometer HFP sends)
    /// take Clinger's fast path: the digits as an exact integer divided by an exact power of ten, which IEEE
    /// division rounds correctly; everything else goes to <see cref="Utf8Parser"/>; the whole text must be the number.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> s, out double value)
    {
        var i = 0;
        var negative = false;
        if (s.Length > 0 && s[0] == (byte)'-')
        {
            negative = true;
            i = 1;
        }

        ulong mantissa = 0;
        var digits = 0;
        var fraction = -1;
        for (; i < s.Length; i++)
        {
            var c = s[i];
            if (c == (byte)'.' && fraction < 0)
            {
                fraction = 0;
                continue;
            }

            var d = (uint)(c - '0');
            if (d > 9)
            {
                break;
            }

            mantissa = (mantissa * 10) + d;
            digits++;
            if (fraction >= 0)
            {
                fraction++;
            }
        }

        if (i == s.Length && digits is > 0 and <= 15 && fraction != 0)
        {
            var v = fraction > 0 ? mantissa / s_powersOfTen[fraction] : mantissa;
            value = negative ? -v : v;
            return true;
        }

        value = double.NaN;
        return Utf8Parser.TryParse(s, out value, out var used) && used == s.Length;
    }
}
