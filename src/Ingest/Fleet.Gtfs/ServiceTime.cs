using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Fleet.Gtfs;

/// <summary>
/// A GTFS time of the service day: seconds after "noon minus 12 h" of the service date in the agency time
/// zone. It can exceed 24:00:00 for trips that run past midnight (<c>25:10:00</c>).
/// </summary>
/// <remarks>
/// An immutable value; thread-safe. The default value is 00:00:00. Convert to an instant with
/// <see cref="Schedule.ToUtc(DateOnly, ServiceTime)"/>, which applies the agency time zone and daylight saving time.
/// </remarks>
public readonly record struct ServiceTime(int TotalSeconds) : IComparable<ServiceTime>, ISpanFormattable
{
    /// <summary>Hours part (may be 24 or more).</summary>
    public int Hours => TotalSeconds / 3600;

    /// <summary>Minutes part, 0 to 59.</summary>
    public int Minutes => TotalSeconds / 60 % 60;

    /// <summary>Seconds part, 0 to 59.</summary>
    public int Seconds => TotalSeconds % 60;

    /// <summary>Creates a time from its parts.</summary>
    public static ServiceTime FromParts(int hours, int minutes, int seconds)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(hours);
        ArgumentOutOfRangeException.ThrowIfNegative(minutes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minutes, 59);
        ArgumentOutOfRangeException.ThrowIfNegative(seconds);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(seconds, 59);
        return new ServiceTime(checked((hours * 3600) + (minutes * 60) + seconds));
    }

    /// <summary>Parses <c>H:MM:SS</c> or <c>HH:MM:SS</c> (hours may exceed 24; surrounding blanks ignored).</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out ServiceTime time)
    {
        time = default;
        text = text.Trim();
        var c1 = text.IndexOf(':');
        if (c1 < 1 || c1 > 3 || text.Length != c1 + 6 || text[c1 + 3] != ':')
        {
            return false;
        }

        var h = 0;
        for (var i = 0; i < c1; i++)
        {
            var d = text[i] - '0';
            if (unchecked((uint)d) > 9)
            {
                return false;
            }

            h = (h * 10) + d;
        }

        if (!TwoDigits(text.Slice(c1 + 1, 2), out var m) || !TwoDigits(text.Slice(c1 + 4, 2), out var s) || m > 59 || s > 59)
        {
            return false;
        }

        time = new ServiceTime((h * 3600) + (m * 60) + s);
        return true;
    }

    /// <summary>Parses <c>HH:MM:SS</c>; throws <see cref="FormatException"/> when malformed.</summary>
    public static ServiceTime Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TryParse(text, out var t) ? t : throw new FormatException($"'{text}' is not a GTFS time (H:MM:SS)");
    }

    /// <summary>Adds seconds.</summary>
    public ServiceTime AddSeconds(int seconds) => new(checked(TotalSeconds + seconds));

    /// <inheritdoc />
    public int CompareTo(ServiceTime other) => TotalSeconds.CompareTo(other.TotalSeconds);

    /// <summary>Compares two times.</summary>
    public static bool operator <(ServiceTime left, ServiceTime right) => left.TotalSeconds < right.TotalSeconds;

    /// <summary>Compares two times.</summary>
    public static bool operator >(ServiceTime left, ServiceTime right) => left.TotalSeconds > right.TotalSeconds;

    /// <summary>Compares two times.</summary>
    public static bool operator <=(ServiceTime left, ServiceTime right) => left.TotalSeconds <= right.TotalSeconds;

    /// <summary>Compares two times.</summary>
    public static bool operator >=(ServiceTime left, ServiceTime right) => left.TotalSeconds >= right.TotalSeconds;

    /// <summary>Formats as <c>HH:MM:SS</c>.</summary>
    public override string ToString() => ToString(null, CultureInfo.InvariantCulture);

    /// <inheritdoc />
    public string ToString(string? format, IFormatProvider? formatProvider)
    {
        Span<char> buffer = stackalloc char[16];
        return TryFormat(buffer, out var n, format, formatProvider) ? new string(buffer[..n]) : TotalSeconds.ToString(CultureInfo.InvariantCulture);
    }

    /// <inheritdoc />
    public bool TryFormat(Span<char> destination, out int charsWritten, [StringSyntax(StringSyntaxAttribute.TimeSpanFormat)] ReadOnlySpan<char> format, IFormatProvider? provider)
    {
        var sign = TotalSeconds < 0 ? "-" : string.Empty;
        var abs = Math.Abs((long)TotalSeconds);
        return destination.TryWrite(CultureInfo.InvariantCulture, $"{sign}{abs / 3600:00}:{abs / 60 % 60:00}:{abs % 60:00}", out charsWritten);
    }

    private static bool TwoDigits(ReadOnlySpan<char> s, out int value)
    {
        var a = s[0] - '0';
        var b = s[1] - '0';
        value = (a * 10) + b;
        return unchecked((uint)a) <= 9 && unchecked((uint)b) <= 9;
    }
}
