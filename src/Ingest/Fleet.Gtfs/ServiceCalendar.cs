namespace Fleet.Gtfs;

/// <summary>calendar.txt and calendar_dates.txt compiled for fast "is service S active on date D" queries.</summary>
/// <remarks>Immutable after loading; thread-safe.</remarks>
internal sealed class ServiceCalendar
{
    private readonly byte[] _weekdays; // bit 0 = Monday ... bit 6 = Sunday
    private readonly int[] _startDay;  // DateOnly.DayNumber, inclusive; int.MaxValue when no calendar.txt row
    private readonly int[] _endDay;    // inclusive
    private readonly Dictionary<long, bool> _exceptions; // (service << 32 | dayNumber) -> added

    public ServiceCalendar(byte[] weekdays, int[] startDay, int[] endDay, Dictionary<long, bool> exceptions)
    {
        _weekdays = weekdays;
        _startDay = startDay;
        _endDay = endDay;
        _exceptions = exceptions;

        int? first = null, last = null;
        for (var s = 0; s < weekdays.Length; s++)
        {
            if (weekdays[s] == 0 || startDay[s] > endDay[s])
            {
                continue;
            }

            // The first/last day within the range that matches a weekday of the mask.
            for (var d = startDay[s]; d <= endDay[s] && d < startDay[s] + 7; d++)
            {
                if (IsActive(s, DateOnly.FromDayNumber(d)))
                {
                    first = Math.Min(first ?? int.MaxValue, d);
                    break;
                }
            }

            for (var d = endDay[s]; d >= startDay[s] && d > endDay[s] - 7; d--)
            {
                if (IsActive(s, DateOnly.FromDayNumber(d)))
                {
                    last = Math.Max(last ?? int.MinValue, d);
                    break;
                }
            }
        }

        foreach (var (key, added) in exceptions)
        {
            if (added)
            {
                var d = (int)(key & 0xFFFFFFFF);
                first = Math.Min(first ?? int.MaxValue, d);
                last = Math.Max(last ?? int.MinValue, d);
            }
        }

        First = first is { } f ? DateOnly.FromDayNumber(f) : null;
        Last = last is { } l ? DateOnly.FromDayNumber(l) : null;
    }

    public DateOnly? First { get; }

    public DateOnly? Last { get; }

    public bool IsActive(int service, DateOnly date)
    {
        var day = date.DayNumber;
        if (_exceptions.Count > 0 && _exceptions.TryGetValue(Key(service, day), out var added))
        {
            return added;
        }

        if (day < _startDay[service] || day > _endDay[service])
        {
            return false;
        }

        // DayOfWeek: Sunday = 0 ... Saturday = 6; the mask has Monday in bit 0.
        var bit = ((int)date.DayOfWeek + 6) % 7;
        return (_weekdays[service] & (1 << bit)) != 0;
    }

    public static long Key(int service, int dayNumber) => ((long)service << 32) | (uint)dayNumber;
}
