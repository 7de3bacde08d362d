using System.Buffers;
using System.Buffers.Text;
using System.Diagnostics;
using System.Text;

namespace Fleet.Simulation.Output;

/// <summary>
/// An append-only UTF-8 byte buffer with culture-free number and timestamp formatting, used to build recording
/// lines without allocating strings.
/// </summary>
/// <remarks>Not thread-safe.</remarks>
public sealed class Utf8Line
{
    private static readonly long[] Pow10 = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000];
    private byte[] _buffer;
    private long _cachedDay = -1;
    private byte[] _cachedDayText = [];

    /// <summary>Creates a buffer with an initial capacity.</summary>
    public Utf8Line(int capacity = 1024) => _buffer = new byte[capacity];

    /// <summary>Bytes written so far.</summary>
    public int Length { get; private set; }

    /// <summary>The written bytes.</summary>
    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, Length);

    /// <summary>Forgets the content, keeping the capacity.</summary>
    public void Clear() => Length = 0;

    /// <summary>Drops everything after <paramref name="length"/>.</summary>
    public void Truncate(int length) => Length = length;

    /// <summary>Appends raw bytes.</summary>
    public Utf8Line Append(ReadOnlySpan<byte> bytes)
    {
        Ensure(bytes.Length);
        bytes.CopyTo(_buffer.AsSpan(Length));
        Length += bytes.Length;
        return this;
    }

    /// <summary>Appends a string as UTF-8.</summary>
    public Utf8Line Append(string text)
    {
        Ensure(Encoding.UTF8.GetMaxByteCount(text.Length));
        Length += Encoding.UTF8.GetBytes(text, _buffer.AsSpan(Length));
        return this;
    }

    /// <summary>Appends bytes as standard base64 (with padding, no line breaks).</summary>
    public Utf8Line AppendBase64(ReadOnlySpan<byte> bytes)
    {
        Ensure(Base64.GetMaxEncodedToUtf8Length(bytes.Length));
        Base64.EncodeToUtf8(bytes, _buffer.AsSpan(Length), out _, out var written);
        Length += written;
        return this;
    }

    /// <summary>Appends one ASCII byte.</summary>
    public Utf8Line Append(byte b)
    {
        Ensure(1);
        _buffer[Length++] = b;
        return this;
    }

    /// <summary>Appends an integer in invariant decimal form.</summary>
    public Utf8Line AppendInt(long value)
    {
        Ensure(21);
        Utf8Formatter.TryFormat(value, _buffer.AsSpan(Length), out var written);
        Length += written;
        return this;
    }

    /// <summary>Appends an integer left-padded with zeros to <paramref name="width"/> digits (non-negative values).</summary>
    public Utf8Line AppendPadded(long value, int width)
    {
        Debug.Assert(value >= 0 && width is > 0 and <= 99);
        Ensure(width + 20);
        Utf8Formatter.TryFormat(value, _buffer.AsSpan(Length), out var written, new StandardFormat('D', (byte)width));
        Length += written;
        return this;
    }

    /// <summary>Appends a number with exactly <paramref name="decimals"/> decimals (rounded half away from zero).</summary>
    public Utf8Line AppendFixed(double value, int decimals) =>
        AppendScaled((long)Math.Round(value * Pow10[decimals], MidpointRounding.AwayFromZero), decimals);

    /// <summary>
    /// Appends <paramref name="scaled"/> / 10^<paramref name="decimals"/> with exactly that many decimals: what
    /// <see cref="AppendFixed"/> writes for a value that rounds to <paramref name="scaled"/>.
    /// </summary>
    public Utf8Line AppendScaled(long scaled, int decimals)
    {
        Debug.Assert(decimals is >= 0 and <= 7);
        Ensure(24);
        if (scaled < 0)
        {
            _buffer[Length++] = (byte)'-';
            scaled = -scaled;
        }

        // All digits at once, zero-padded so that there is one before the point, then the point moved in.
        Utf8Formatter.TryFormat(scaled, _buffer.AsSpan(Length), out var written, new StandardFormat('D', (byte)(decimals + 1)));
        if (decimals > 0)
        {
            var point = Length + written - decimals;
            _buffer.AsSpan(point, decimals).CopyTo(_buffer.AsSpan(point + 1));
            _buffer[point] = (byte)'.';
            written++;
        }

        Length += written;
        return this;
    }

    /// <summary>
    /// Appends a UTC timestamp as <c>yyyy-MM-ddTHH:mm:ss.fffZ</c> (3 digits) or with 6 fraction digits, from
    /// <see cref="DateTime.Ticks"/>.
    /// </summary>
    public Utf8Line AppendTimestamp(long ticks, int fractionDigits)
    {
        // The date part is cached: a recording spends hours on one day, and DateTime's calendar arithmetic is the
        // slowest part of formatting a line.
        var day = ticks / TimeSpan.TicksPerDay;
        if (day != _cachedDay)
        {
            var dt = new DateTime(day * TimeSpan.TicksPerDay, DateTimeKind.Utc);
            var start = Length;
            AppendPadded(dt.Year, 4).Append((byte)'-').AppendPadded(dt.Month, 2).Append((byte)'-').AppendPadded(dt.Day, 2).Append((byte)'T');
            _cachedDayText = _buffer.AsSpan(start, Length - start).ToArray();
            Length = start;
            _cachedDay = day;
        }

        Ensure(32);
        _cachedDayText.CopyTo(_buffer.AsSpan(Length));
        Length += _cachedDayText.Length;
        var rest = ticks - (day * TimeSpan.TicksPerDay);
        var seconds = (int)(rest / TimeSpan.TicksPerSecond);
        TwoDigits(seconds / 3600);
        _buffer[Length++] = (byte)':';
        TwoDigits(seconds / 60 % 60);
        _buffer[Length++] = (byte)':';
        TwoDigits(seconds % 60);
        _buffer[Length++] = (byte)'.';
        var fraction = (rest % TimeSpan.TicksPerSecond) / Pow10[7 - fractionDigits];
        for (var k = fractionDigits - 1; k >= 0; k--)
        {
            _buffer[Length + k] = (byte)('0' + (fraction % 10));
            fraction /= 10;
        }

        Length += fractionDigits;
        _buffer[Length++] = (byte)'Z';
        return this;
    }

    private void TwoDigits(int value)
    {
        _buffer[Length++] = (byte)('0' + (value / 10));
        _buffer[Length++] = (byte)('0' + (value % 10));
    }

    /// <summary>Appends a local date as <c>yyyy-MM-dd</c>.</summary>
    public Utf8Line AppendDate(DateOnly date) =>
        AppendPadded(date.Year, 4).Append((byte)'-').AppendPadded(date.Month, 2).Append((byte)'-').AppendPadded(date.Day, 2);

    private void Ensure(int extra)
    {
        if (Length + extra > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, Length + extra));
        }
    }
}
