using System.Runtime.CompilerServices;

namespace Fleet.Ingest.Text;

/// <summary>
/// Allocation-free ISO-8601 timestamp parsing and formatting on UTF-8 bytes, for the shapes HFP and the
/// recording format use.
/// </summary>
/// <remarks>
/// Accepts <c>yyyy-MM-ddTHH:mm:ss</c> with an optional fraction of 1 to 9 digits (digits beyond the 7 a
/// <see cref="DateTime"/> holds are ignored) and a zone of <c>Z</c>, <c>±hh:mm</c> or <c>±hhmm</c>; a space is
/// accepted in place of the <c>T</c>. A missing zone means UTC. The result is always a UTC <see cref="DateTime"/>.
/// Stateless and thread-safe.
/// </remarks>
public static class Iso8601
{
    /// <summary>Parses a timestamp; false when <paramref name="text"/> is not one of the accepted shapes.</summary>
    public static bool TryParseUtc(ReadOnlySpan<byte> text, out DateTime value)
    {
        value = default;
        if (text.Length < 19
            || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != ' ' && text[10] != 't')
            || text[13] != ':' || text[16] != ':')
        {
            return false;
        }

        if (!TryDigits4(text, 0, out var year) || !TryDigits2(text, 5, out var month) || !TryDigits2(text, 8, out var day)
            || !TryDigits2(text, 11, out var hour) || !TryDigits2(text, 14, out var minute) || !TryDigits2(text, 17, out var second))
        {
            return false;
        }

        if (year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 59)
        {
            return false;
        }

        var pos = 19;
        long fractionTicks = 0;
        if (pos < text.Length && text[pos] == '.')
        {
            pos++;
            var start = pos;
            var scale = TimeSpan.TicksPerSecond;
            while (pos < text.Length && IsDigit(text[pos]))
            {
                if (pos - start < 7)
                {
                    scale /= 10;
                    fractionTicks += (text[pos] - '0') * scale;
                }

                pos++;
            }

            if (pos == start || pos - start > 9)
            {
                return false;
            }
        }

        long offsetTicks = 0;
        if (pos < text.Length)
        {
            var sign = text[pos];
            if (sign is (byte)'Z' or (byte)'z')
            {
                pos++;
            }
            else if (sign is (byte)'+' or (byte)'-')
            {
                pos++;
                if (!TryDigits2(text, pos, out var oh))
                {
                    return false;
                }

                pos += 2;
                if (pos < text.Length && text[pos] == ':')
                {
                    pos++;
                }

                if (!TryDigits2(text, pos, out var om) || oh > 14 || om > 59)
                {
                    return false;
                }

                pos += 2;
                offsetTicks = ((oh * 60L) + om) * TimeSpan.TicksPerMinute;
                if (sign == '-')
                {
                    offsetTicks = -offsetTicks;
                }
            }

            if (pos != text.Length)
            {
                return false;
            }
        }

        var ticks = new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc).Ticks + fractionTicks - offsetTicks;
        if (ticks < DateTime.MinValue.Ticks || ticks > DateTime.MaxValue.Ticks)
        {
            return false;
        }

        value = new DateTime(ticks, DateTimeKind.Utc);
        return true;
    }

    /// <summary>Parses <c>yyyy-MM-dd</c>.</summary>
    public static bool TryParseDate(ReadOnlySpan<byte> text, out DateOnly value)
    {
        value = default;
        if (text.Length != 10 || text[4] != '-' || text[7] != '-'
            || !TryDigits4(text, 0, out var year) || !TryDigits2(text, 5, out var month) || !TryDigits2(text, 8, out var day)
            || year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month))
        {
            return false;
        }

        value = new DateOnly(year, month, day);
        return true;
    }

    /// <summary>Parses a time of day <c>H:mm</c>, <c>HH:mm</c> or <c>HH:mm:ss</c> (hours up to 47) into seconds.</summary>
    public static bool TryParseTimeOfDay(ReadOnlySpan<byte> text, out int seconds)
    {
        seconds = -1;
        var colon = text.IndexOf((byte)':');
        if (colon is < 1 or > 2)
        {
            return false;
        }

        var hour = 0;
        for (var i = 0; i < colon; i++)
        {
            if (!IsDigit(text[i]))
            {
                return false;
            }

            hour = (hour * 10) + text[i] - '0';
        }

        var rest = text[(colon + 1)..];
        int minute, second = 0;
        if (rest.Length == 2)
        {
            if (!TryDigits2(rest, 0, out minute))
            {
                return false;
            }
        }
        else if (rest.Length == 5 && rest[2] == ':')
        {
            if (!TryDigits2(rest, 0, out minute) || !TryDigits2(rest, 3, out second))
            {
                return false;
            }
        }
        else
        {
            return false;
        }

        if (hour > 47 || minute > 59 || second > 59)
        {
            return false;
        }

        seconds = (hour * 3600) + (minute * 60) + second;
        return true;
    }

    /// <summary>The number of bytes <see cref="FormatUtc"/> writes.</summary>
    public const int FormattedLength = 27;

    /// <summary>
    /// Writes <c>yyyy-MM-ddTHH:mm:ss.ffffffZ</c> (microseconds, as HSL's dumps) into <paramref name="destination"/>,
    /// which must hold <see cref="FormattedLength"/> bytes. The value is converted to UTC first.
    /// </summary>
    public static int FormatUtc(DateTime value, Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, FormattedLength);
        var utc = value.Kind == DateTimeKind.Local ? value.ToUniversalTime() : value;
        Write4(destination, 0, utc.Year);
        destination[4] = (byte)'-';
        Write2(destination, 5, utc.Month);
        destination[7] = (byte)'-';
        Write2(destination, 8, utc.Day);
        destination[10] = (byte)'T';
        Write2(destination, 11, utc.Hour);
        destination[13] = (byte)':';
        Write2(destination, 14, utc.Minute);
        destination[16] = (byte)':';
        Write2(destination, 17, utc.Second);
        destination[19] = (byte)'.';
        var micros = (int)(utc.Ticks % TimeSpan.TicksPerSecond / 10);
        for (var i = 25; i >= 20; i--)
        {
            destination[i] = (byte)('0' + (micros % 10));
            micros /= 10;
        }

        destination[26] = (byte)'Z';
        return FormattedLength;
    }

    /// <summary>Formats as <see cref="FormatUtc"/> into a string (for logs and reports, not hot paths).</summary>
    public static string ToIsoString(DateTime value)
    {
        Span<byte> buffer = stackalloc byte[FormattedLength];
        FormatUtc(value, buffer);
        return System.Text.Encoding.ASCII.GetString(buffer);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryDigits2(ReadOnlySpan<byte> s, int at, out int value)
    {
        value = 0;
        if ((uint)(at + 1) >= (uint)s.Length)
        {
            return false;
        }

        uint a = (uint)(s[at] - '0'), b = (uint)(s[at + 1] - '0');
        if (a > 9 || b > 9)
        {
            return false;
        }

        value = (int)((a * 10) + b);
        return true;
    }

    private static bool TryDigits4(ReadOnlySpan<byte> s, int at, out int value)
    {
        value = 0;
        if (!TryDigits2(s, at, out var hi) || !TryDigits2(s, at + 2, out var lo))
        {
            return false;
        }

        value = (hi * 100) + lo;
        return true;
    }

    private static void Write2(Span<byte> d, int at, int v)
    {
        d[at] = (byte)('0' + (v / 10));
        d[at + 1] = (byte)('0' + (v % 10));
    }

    private static void Write4(Span<byte> d, int at, int v)
    {
        Write2(d, at, v / 100);
        Write2(d, at + 2, v % 100);
    }
}
