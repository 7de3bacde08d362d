namespace Fleet.Simulation;

/// <summary>The arguments of <c>fleet generate</c>: which city, which day, how large.</summary>
/// <remarks>
/// <see cref="City"/>, <see cref="Routes"/>, <see cref="Vehicles"/>, <see cref="Hours"/>, <see cref="Date"/> and
/// <see cref="Start"/> fix the network and the schedule (the GTFS feed); <see cref="Seed"/> fixes only the day's
/// dynamics, so the same city with another seed is another day with the same gtfs.zip.
/// </remarks>
public sealed record GenerateOptions
{
    /// <summary>The city: fixes the street network, the routes and the schedule.</summary>
    public int City { get; init; } = 1;

    /// <summary>The day's dynamics: traffic, demand, incidents, GPS noise, which bus runs which block.</summary>
    public ulong Seed { get; init; } = 42;

    /// <summary>Number of bus routes.</summary>
    public int Routes { get; init; } = 12;

    /// <summary>
    /// Fleet size: the buses on the road at the window's busiest moment, from which the timetable's headways are derived;
    /// the recording has about this many vehicles whatever the window's length.
    /// </summary>
    public int Vehicles { get; init; } = 150;

    /// <summary>
    /// Length of the recorded window in hours. The timetable is already running when the window opens and goes on
    /// after it closes: the GTFS feed has every trip that runs during the window (in full), the recording what was
    /// received inside it, and the truth every stop of those trips.
    /// </summary>
    public double Hours { get; init; } = 3;

    /// <summary>The operating day (local date in <see cref="TimeZoneId"/>).</summary>
    public DateOnly Date { get; init; } = new(2026, 3, 2);

    /// <summary>Local start of the recorded window.</summary>
    public TimeOnly Start { get; init; } = new(6, 0);

    /// <summary>The agency's IANA time zone.</summary>
    public string TimeZoneId { get; init; } = "Europe/Helsinki";

    /// <summary>Seconds between two GTFS-RT snapshots of the agency feed.</summary>
    public int GtfsRtIntervalSeconds { get; init; } = 30;

    /// <summary>
    /// The zlib level of recording.hfp.gz (1 fastest to 9 smallest). It changes only the compressed bytes, never the
    /// recording's lines. The default, 2, compresses a 1,000-vehicle city about three times faster than level 6 for a
    /// file about a quarter larger (the compression, not the simulation, bounds generation on two cores; see
    /// docs/BENCHMARKS.md); the committed sample-data uses 6 to stay small.
    /// </summary>
    public int GzipLevel { get; init; } = DefaultGzipLevel;

    /// <summary>The default <see cref="GzipLevel"/>.</summary>
    public const int DefaultGzipLevel = 2;

    /// <summary>Checks ranges; throws <see cref="ArgumentOutOfRangeException"/> naming the bad value.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(City, 0, nameof(City));
        ArgumentOutOfRangeException.ThrowIfLessThan(Routes, 1, nameof(Routes));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Routes, 400, nameof(Routes));
        ArgumentOutOfRangeException.ThrowIfLessThan(Vehicles, Routes * 2, nameof(Vehicles));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Vehicles, 20_000, nameof(Vehicles));
        ArgumentOutOfRangeException.ThrowIfLessThan(Hours, 0.75, nameof(Hours));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Start.ToTimeSpan().TotalHours + Hours, 24.0, nameof(Hours));
        ArgumentOutOfRangeException.ThrowIfLessThan(GtfsRtIntervalSeconds, 1, nameof(GtfsRtIntervalSeconds));
        ArgumentOutOfRangeException.ThrowIfLessThan(GzipLevel, 1, nameof(GzipLevel));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(GzipLevel, 9, nameof(GzipLevel));
    }
}
