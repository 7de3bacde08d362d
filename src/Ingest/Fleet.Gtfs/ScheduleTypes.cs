namespace Fleet.Gtfs;

/// <summary>An agency of the feed (agency.txt).</summary>
/// <param name="Id">agency_id (empty when the feed has one agency and leaves it out).</param>
/// <param name="Name">agency_name.</param>
/// <param name="Url">agency_url.</param>
/// <param name="TimeZoneId">agency_timezone, an IANA zone such as <c>America/New_York</c>.</param>
public sealed record Agency(string Id, string Name, string Url, string TimeZoneId);

/// <summary>A stop, station or other location (stops.txt). Indexes refer to <see cref="Schedule.Stops"/>.</summary>
/// <param name="Id">stop_id.</param>
/// <param name="Name">stop_name (may be empty).</param>
/// <param name="Latitude">stop_lat, WGS84 degrees; NaN for generic nodes and boarding areas without one.</param>
/// <param name="Longitude">stop_lon, WGS84 degrees; NaN when absent.</param>
/// <param name="LocationType">location_type: 0 stop/platform, 1 station, 2 entrance, 3 generic node, 4 boarding area.</param>
/// <param name="ParentStation">Index of the parent station, or -1.</param>
public readonly record struct Stop(string Id, string Name, double Latitude, double Longitude, byte LocationType, int ParentStation)
{
    /// <summary>stop_code, the short code riders see on the stop (may be empty).</summary>
    public string Code { get; init; } = string.Empty;
}

/// <summary>A route (routes.txt).</summary>
/// <param name="Id">route_id.</param>
/// <param name="AgencyIndex">Index into <see cref="Schedule.Agencies"/>.</param>
/// <param name="ShortName">route_short_name (may be empty).</param>
/// <param name="LongName">route_long_name (may be empty).</param>
/// <param name="RouteType">route_type (0 tram, 1 subway, 2 rail, 3 bus, 4 ferry, ... or extended types); -1 when invalid.</param>
public readonly record struct Route(string Id, int AgencyIndex, string ShortName, string LongName, int RouteType)
{
    /// <summary>route_color as six upper-case hex digits (<c>RRGGBB</c>), or null when absent or malformed.</summary>
    public string? Color { get; init; }

    /// <summary>route_text_color as six upper-case hex digits, or null when absent or malformed.</summary>
    public string? TextColor { get; init; }
}

/// <summary>A trip (trips.txt) with the location of its stop times and frequencies in the schedule's flat arrays.</summary>
/// <param name="Id">trip_id.</param>
/// <param name="RouteIndex">Index into <see cref="Schedule.Routes"/>.</param>
/// <param name="ServiceIndex">Index into <see cref="Schedule.ServiceIds"/>.</param>
/// <param name="DirectionId">direction_id 0 or 1; -1 when the feed leaves it out.</param>
/// <param name="ShapeIndex">Index into <see cref="Schedule.ShapeIds"/>, or -1 when the trip has no shape.</param>
/// <param name="Headsign">trip_headsign (may be empty).</param>
/// <param name="ShortName">trip_short_name (may be empty).</param>
/// <param name="FirstStopTime">Offset of the first stop time in the flat stop-time array.</param>
/// <param name="StopTimeCount">Number of stop times (0 when stop_times.txt had none for the trip).</param>
/// <param name="FirstFrequency">Offset of the first frequency window.</param>
/// <param name="FrequencyCount">Number of frequencies.txt windows; 0 for a plain scheduled trip.</param>
public readonly record struct Trip(
    string Id,
    int RouteIndex,
    int ServiceIndex,
    sbyte DirectionId,
    int ShapeIndex,
    string Headsign,
    string ShortName,
    int FirstStopTime,
    int StopTimeCount,
    int FirstFrequency,
    int FrequencyCount)
{
    /// <summary>True when the trip is defined by frequencies.txt (its stop times are a template).</summary>
    public bool IsFrequencyBased => FrequencyCount > 0;
}

/// <summary>One stop of a trip (stop_times.txt), ordered by <see cref="Sequence"/> within the trip.</summary>
/// <param name="StopIndex">Index into <see cref="Schedule.Stops"/>.</param>
/// <param name="Sequence">stop_sequence (increasing, not necessarily consecutive).</param>
/// <param name="Arrival">Arrival time of the service day.</param>
/// <param name="Departure">Departure time of the service day.</param>
/// <param name="DistanceMetres">Distance along the trip's shape in metres (from shape_dist_traveled mapped to metres
/// when the feed gives it, otherwise the stop projected onto the shape, or along the stop-to-stop line without a shape).</param>
/// <param name="PickupType">pickup_type (0 regular, 1 none, 2 phone, 3 coordinate with driver).</param>
/// <param name="DropOffType">drop_off_type, same codes.</param>
/// <param name="Interpolated">True when the feed left the times empty and the loader interpolated them.</param>
public readonly record struct StopTime(
    int StopIndex,
    int Sequence,
    ServiceTime Arrival,
    ServiceTime Departure,
    float DistanceMetres,
    byte PickupType,
    byte DropOffType,
    bool Interpolated);

/// <summary>A frequencies.txt window of a frequency-based trip.</summary>
/// <param name="Start">start_time: the first departure of the window.</param>
/// <param name="End">end_time (exclusive).</param>
/// <param name="HeadwaySeconds">headway_secs.</param>
/// <param name="ExactTimes">exact_times = 1: departures are exactly <c>Start + k × headway</c>.</param>
public readonly record struct Frequency(ServiceTime Start, ServiceTime End, int HeadwaySeconds, bool ExactTimes);

/// <summary>
/// A trip as it runs on one service date: the static trip, the date, and the actual start (for a frequency-based
/// trip, one departure of its window).
/// </summary>
/// <param name="TripIndex">Index into <see cref="Schedule.Trips"/>.</param>
/// <param name="ServiceDate">The service date the trip runs on.</param>
/// <param name="StartTime">Departure from the first stop on this date.</param>
/// <param name="OffsetSeconds">Seconds to add to the trip's stop times (non-zero only for frequency-based trips).</param>
public readonly record struct TripInstance(int TripIndex, DateOnly ServiceDate, ServiceTime StartTime, int OffsetSeconds);

/// <summary>A problem found in a feed row: file, 1-based line, a short kind and a readable reason.</summary>
/// <param name="File">The GTFS file, for example <c>stop_times.txt</c>.</param>
/// <param name="Line">1-based line of the row (the header is line 1); 0 for a file-level problem.</param>
/// <param name="Kind">A stable snake_case kind used for counting (<c>unknown_stop</c>, <c>bad_time</c>, ...).</param>
/// <param name="Message">What is wrong, naming the value.</param>
public sealed record GtfsIssue(string File, int Line, string Kind, string Message)
{
    /// <inheritdoc />
    public override string ToString() => $"{File}:{Line}: {Kind}: {Message}";
}

/// <summary>The outcome of loading a feed: every rejected or repaired row, counted by kind.</summary>
/// <remarks>Immutable after loading; thread-safe to read.</remarks>
public sealed class GtfsLoadReport
{
    /// <summary>How many issues are kept with full detail; the rest are only counted.</summary>
    public const int MaxDetailedIssues = 1000;

    private readonly List<GtfsIssue> _issues = [];
    private readonly Dictionary<string, int> _counts = new(StringComparer.Ordinal);

    /// <summary>The first <see cref="MaxDetailedIssues"/> issues, in the order found.</summary>
    public IReadOnlyList<GtfsIssue> Issues => _issues;

    /// <summary>Issue counts by <see cref="GtfsIssue.Kind"/> (every issue, not only the detailed ones).</summary>
    public IReadOnlyDictionary<string, int> CountsByKind => _counts;

    /// <summary>Total number of issues.</summary>
    public int TotalIssues { get; private set; }

    internal void Add(string file, int line, string kind, string message)
    {
        TotalIssues++;
        _counts[kind] = _counts.GetValueOrDefault(kind) + 1;
        if (_issues.Count < MaxDetailedIssues)
        {
            _issues.Add(new GtfsIssue(file, line, kind, message));
        }
    }
}

/// <summary>A feed that cannot be loaded at all: a required file is missing or the agency time zone is unusable.</summary>
public sealed class GtfsFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    public GtfsFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with an inner cause.</summary>
    public GtfsFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception with a default message.</summary>
    public GtfsFormatException()
        : base("the GTFS feed cannot be loaded")
    {
    }
}
