namespace Fleet.Tracking;

/// <summary>
/// The stream clock of live sources: tracking judges lateness and staleness by event time, not by when a report
/// arrived. The clock is the newest event time seen (never more than <see cref="MaxAhead"/> past the wall clock, so
/// one vehicle with a clock in the future cannot make the others late); once every source has been silent for longer
/// than the lateness window it moves on with the wall clock, so the vehicles of a feed that stopped still go stale.
/// A recording published to a broker (old timestamps) is therefore tracked like the live feed it was.
/// </summary>
/// <remarks>Not thread-safe: one caller at a time (the live pipeline calls it under its queue lock).</remarks>
/// <param name="time">The wall clock.</param>
/// <param name="lateness">How long events may still come after the newest one (tracking's reorder window).</param>
public sealed class EventTimeClock(TimeProvider time, TimeSpan lateness)
{
    /// <summary>How far past the wall clock an event time may move the clock.</summary>
    public static readonly TimeSpan MaxAhead = TimeSpan.FromSeconds(5);

    private readonly TimeProvider _time = time ?? throw new ArgumentNullException(nameof(time));
    private DateTime _newest;
    private long _newestAt;

    /// <summary>True once an event was observed.</summary>
    public bool Started => _newest != default;

    /// <summary>An event arrives: the clock moves to its time (capped) when that is newer. Returns the clock.</summary>
    public DateTime Observe(DateTime eventTime)
    {
        var now = _time.GetTimestamp();
        var cap = _time.GetUtcNow().UtcDateTime + MaxAhead;
        var t = eventTime > cap ? cap : eventTime;
        if (t > _newest)
        {
            _newest = t;
            _newestAt = now;
        }

        return At(now);
    }

    /// <summary>The clock now, or null before the first event.</summary>
    public DateTime? Now => Started ? At(_time.GetTimestamp()) : null;

    // The newest event time, moved on with the wall clock once the sources have been silent for longer than the
    // lateness window (events within the window may still come; after it nothing holds the clock).
    private DateTime At(long now)
    {
        var idle = _time.GetElapsedTime(_newestAt, now) - lateness;
        return idle > TimeSpan.Zero ? _newest + idle : _newest;
    }
}
