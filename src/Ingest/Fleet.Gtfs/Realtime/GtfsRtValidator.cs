using TransitRealtime;
using StopTimeUpdate = TransitRealtime.TripUpdate.Types.StopTimeUpdate;

namespace Fleet.Gtfs.Realtime;

/// <summary>One problem in a GTFS-Realtime snapshot.</summary>
/// <param name="Code">A MobilityData gtfs-realtime-validator rule id (<c>E003</c>, <c>W008</c>, ...).</param>
/// <param name="EntityId">The FeedEntity id, or empty for a header finding.</param>
/// <param name="Message">What is wrong, naming the values.</param>
public sealed record GtfsRtFinding(string Code, string EntityId, string Message)
{
    /// <summary>True for an error (E...), false for a warning (W...).</summary>
    public bool IsError => Code.StartsWith('E');

    /// <inheritdoc />
    public override string ToString() => $"{Code} [{EntityId}] {Message}";
}

/// <summary>Thresholds of <see cref="GtfsRtValidator"/>.</summary>
public sealed class GtfsRtValidatorOptions
{
    /// <summary>A header older than this at receive time is reported as W008 (MobilityData uses 65 s; Fleet's default is 90 s).</summary>
    public TimeSpan StaleAfter { get; set; } = TimeSpan.FromSeconds(90);

    /// <summary>A header this far ahead of the receive time is reported as E050.</summary>
    public TimeSpan FutureTolerance { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>A matched vehicle farther than this from its trip's shape is reported as E029.</summary>
    public double MaxOffShapeMetres { get; set; } = 200;

    /// <summary>A speed above this is reported as W004 (m/s; 50 m/s = 180 km/h).</summary>
    public double MaxSpeedMetresPerSecond { get; set; } = 50;

    /// <summary>How many findings are kept with full detail per snapshot; the rest are only counted.</summary>
    public int MaxDetailedFindings { get; set; } = 500;
}

/// <summary>The validation of one snapshot: counts, join figures and findings.</summary>
public sealed class GtfsRtValidationResult
{
    private readonly List<GtfsRtFinding> _findings = [];
    private readonly SortedDictionary<string, int> _counts = new(StringComparer.Ordinal);
    private readonly int _maxDetailed;

    internal GtfsRtValidationResult(int maxDetailed) => _maxDetailed = maxDetailed;

    /// <summary>Header timestamp, UTC; null when absent.</summary>
    public DateTime? Timestamp { get; internal set; }

    /// <summary>Entities with a TripUpdate.</summary>
    public int TripUpdates { get; internal set; }

    /// <summary>Entities with a VehiclePosition.</summary>
    public int VehiclePositions { get; internal set; }

    /// <summary>Entities with an Alert.</summary>
    public int Alerts { get; internal set; }

    /// <summary>TripUpdates and VehiclePositions whose trip descriptor names a trip (trip_id, or route_id with start_time).</summary>
    public int TripsTotal { get; internal set; }

    /// <summary>Of <see cref="TripsTotal"/>, those joined to a static trip (by trip_id, or by route, direction, date and start).</summary>
    public int TripsMatched { get; internal set; }

    /// <summary>stop_time_updates and VehiclePositions that name a stop (stop_id or stop_sequence).</summary>
    public int StopsTotal { get; internal set; }

    /// <summary>Of <see cref="StopsTotal"/>, those whose stop_id is in stops.txt (or whose stop_sequence is in the joined trip).</summary>
    public int StopsMatched { get; internal set; }

    /// <summary>Findings kept with full detail (up to <see cref="GtfsRtValidatorOptions.MaxDetailedFindings"/>).</summary>
    public IReadOnlyList<GtfsRtFinding> Findings => _findings;

    /// <summary>Every finding counted by code, codes in ordinal order.</summary>
    public IReadOnlyDictionary<string, int> CountsByCode => _counts;

    internal void Add(string code, string entityId, string message)
    {
        _counts[code] = _counts.GetValueOrDefault(code) + 1;
        if (_findings.Count < _maxDetailed)
        {
            _findings.Add(new GtfsRtFinding(code, entityId, message));
        }
    }
}

/// <summary>
/// Validates GTFS-Realtime snapshots, alone or against the static <see cref="Schedule"/>, using the rule ids of
/// MobilityData's gtfs-realtime-validator where one exists.
/// </summary>
/// <remarks>
/// <para>Rules: E001 timestamps not POSIX seconds; E002 stop_time_updates not sorted by stop_sequence; E003 unknown
/// trip_id; E004 unknown route_id; E011 unknown stop_id; E012 entity timestamp newer than the header; E018 header
/// timestamp went back since the previous snapshot; E020/E021 malformed start_time/start_date; E022 times decrease
/// along the trip; E023 start_time differs from the trip's first departure; E024 direction_id differs; E025
/// arrival after departure at one stop; E026 invalid position; E027 invalid bearing; E029 vehicle far from its
/// trip's shape; E032/E033 alert without (specific) informed entity; E035 trip_id not on route_id; E036/E037
/// repeated stop_sequence/stop_id; E038 bad gtfs_realtime_version; E039 is_deleted in a full dataset; E040
/// stop_time_update without stop; E041 trip update without stop_time_updates; E042 times on a NO_DATA stop; E043
/// neither arrival nor departure; E044 arrival/departure without time or delay; E045 stop_sequence and stop_id
/// disagree with GTFS; E048 header timestamp missing; E050 timestamp in the future; E051 stop_sequence not in the
/// trip; W002 no vehicle id; W004 unrealistic speed; W006 trip without trip_id; W008 stale feed (over
/// <see cref="GtfsRtValidatorOptions.StaleAfter"/>, 90 s by default).</para>
/// <para>Keeps the previous header timestamp for E018, so use one validator per feed. Not thread-safe.</para>
/// </remarks>
public sealed class GtfsRtValidator
{
    private const ulong MinPosix = 946_684_800;   // 2000-01-01: anything earlier is not a realistic POSIX time
    private const ulong MaxPosix = 4_102_444_800; // 2100-01-01: anything later is milliseconds or garbage

    private readonly TripMatcher? _matcher;
    private readonly GtfsRtValidatorOptions _options;
    private ulong? _previousHeader;

    /// <summary>Creates a validator; <paramref name="schedule"/> null checks the feed alone.</summary>
    public GtfsRtValidator(Schedule? schedule, GtfsRtValidatorOptions? options = null)
    {
        _matcher = schedule is null ? null : new TripMatcher(schedule);
        _options = options ?? new GtfsRtValidatorOptions();
    }

    /// <summary>Validates one snapshot.</summary>
    /// <param name="feed">The decoded feed.</param>
    /// <param name="receiveTimeUtc">When it was received; null (files of unknown age) skips W008 and E050.</param>
    public GtfsRtValidationResult Validate(FeedMessage feed, DateTime? receiveTimeUtc = null)
    {
        ArgumentNullException.ThrowIfNull(feed);
        var r = new GtfsRtValidationResult(_options.MaxDetailedFindings);
        var header = feed.Header;
        var headerTs = header is { HasTimestamp: true } ? header.Timestamp : (ulong?)null;
        CheckHeader(feed, headerTs, receiveTimeUtc, r);
        var feedTime = headerTs is { } ts && ts is >= MinPosix and <= MaxPosix
            ? GtfsRtNormalizer.FromPosix(ts)
            : receiveTimeUtc ?? DateTime.UtcNow;
        var full = header?.Incrementality != FeedHeader.Types.Incrementality.Differential;

        foreach (var entity in feed.Entity)
        {
            var id = entity.Id ?? string.Empty;
            if (entity.IsDeleted && full)
            {
                r.Add("E039", id, "is_deleted is set in a FULL_DATASET feed");
            }

            if (entity.TripUpdate is { } tu)
            {
                r.TripUpdates++;
                CheckTripUpdate(id, tu, headerTs, feedTime, r);
            }

            if (entity.Vehicle is { } vp)
            {
                r.VehiclePositions++;
                CheckVehicle(id, vp, headerTs, feedTime, r);
            }

            if (entity.Alert is { } alert)
            {
                r.Alerts++;
                CheckAlert(id, alert, r);
            }
        }

        return r;
    }

    private void CheckHeader(FeedMessage feed, ulong? headerTs, DateTime? receive, GtfsRtValidationResult r)
    {
        var header = feed.Header;
        if (header is null)
        {
            r.Add("E048", string.Empty, "the feed has no header");
            return;
        }

        if (header.GtfsRealtimeVersion is not ("1.0" or "2.0"))
        {
            r.Add("E038", string.Empty, $"header.gtfs_realtime_version '{header.GtfsRealtimeVersion}' is not 1.0 or 2.0");
        }

        if (headerTs is not { } ts)
        {
            r.Add("E048", string.Empty, "header.timestamp is not set");
            return;
        }

        if (ts is < MinPosix or > MaxPosix)
        {
            r.Add("E001", string.Empty, $"header.timestamp {ts} is not POSIX seconds");
            return;
        }

        r.Timestamp = GtfsRtNormalizer.FromPosix(ts);
        if (_previousHeader is { } prev && ts < prev)
        {
            r.Add("E018", string.Empty, $"header.timestamp {ts} is older than the previous snapshot's {prev}");
        }

        _previousHeader = ts;
        if (receive is { } now)
        {
            var age = now - r.Timestamp.Value;
            if (age > _options.StaleAfter)
            {
                r.Add("W008", string.Empty, $"feed is stale: header.timestamp is {age.TotalSeconds:F0} s old (limit {_options.StaleAfter.TotalSeconds:F0} s)");
            }
            else if (-age > _options.FutureTolerance)
            {
                r.Add("E050", string.Empty, $"header.timestamp is {-age.TotalSeconds:F0} s in the future");
            }
        }
    }

    private TripMatch CheckTrip(string id, TripDescriptor? trip, DateTime feedTime, GtfsRtValidationResult r)
    {
        if (trip is null)
        {
            return default;
        }

        if (trip.HasStartTime && TripMatcher.ParseTime(trip.StartTime) is null)
        {
            r.Add("E020", id, $"start_time '{trip.StartTime}' is not HH:MM:SS");
        }

        if (trip.HasStartDate && TripMatcher.ParseDate(trip.StartDate) is null)
        {
            r.Add("E021", id, $"start_date '{trip.StartDate}' is not YYYYMMDD");
        }

        if (!trip.HasTripId)
        {
            r.Add("W006", id, "trip descriptor has no trip_id");
        }

        var names = trip.HasTripId || (trip.HasRouteId && trip.HasStartTime);
        if (names)
        {
            r.TripsTotal++;
        }

        if (_matcher is null)
        {
            return default;
        }

        var schedule = _matcher.Schedule;
        var relationship = trip.HasScheduleRelationship ? trip.ScheduleRelationship : TripDescriptor.Types.ScheduleRelationship.Scheduled;
        var added = relationship is TripDescriptor.Types.ScheduleRelationship.Added or TripDescriptor.Types.ScheduleRelationship.New
            or TripDescriptor.Types.ScheduleRelationship.Unscheduled or TripDescriptor.Types.ScheduleRelationship.Duplicated;
        if (trip.HasTripId && !schedule.TryGetTrip(trip.TripId, out _) && !added)
        {
            r.Add("E003", id, $"trip_id '{trip.TripId}' is not in the static GTFS");
        }

        if (trip.HasRouteId && !schedule.TryGetRoute(trip.RouteId, out _))
        {
            r.Add("E004", id, $"route_id '{trip.RouteId}' is not in the static GTFS");
        }

        var match = _matcher.Match(trip, feedTime);
        if (!match.IsMatched)
        {
            return match;
        }

        if (names)
        {
            r.TripsMatched++;
        }

        var st = schedule.Trips[match.Instance.TripIndex];
        if (trip.HasRouteId && !string.Equals(schedule.Routes[st.RouteIndex].Id, trip.RouteId, StringComparison.Ordinal))
        {
            r.Add("E035", id, $"trip_id '{st.Id}' belongs to route '{schedule.Routes[st.RouteIndex].Id}', not '{trip.RouteId}'");
        }

        if (trip.HasDirectionId && st.DirectionId >= 0 && trip.DirectionId != (uint)st.DirectionId)
        {
            r.Add("E024", id, $"direction_id {trip.DirectionId} differs from GTFS {st.DirectionId} for trip '{st.Id}'");
        }

        if (!st.IsFrequencyBased && TripMatcher.ParseTime(trip.StartTime) is { } start && start != schedule.GetStartTime(match.Instance.TripIndex))
        {
            r.Add("E023", id, $"start_time {start} differs from the first departure {schedule.GetStartTime(match.Instance.TripIndex)} of trip '{st.Id}'");
        }

        return match;
    }

    private void CheckTripUpdate(string id, TripUpdate tu, ulong? headerTs, DateTime feedTime, GtfsRtValidationResult r)
    {
        if (tu.HasTimestamp && headerTs is { } h && tu.Timestamp > h)
        {
            r.Add("E012", id, $"trip_update.timestamp {tu.Timestamp} is newer than header.timestamp {h}");
        }

        if (tu.HasTimestamp && tu.Timestamp is < MinPosix or > MaxPosix)
        {
            r.Add("E001", id, $"trip_update.timestamp {tu.Timestamp} is not POSIX seconds");
        }

        if (tu.Vehicle is null || !(tu.Vehicle.HasId || tu.Vehicle.HasLabel))
        {
            r.Add("W002", id, "trip_update has no vehicle id");
        }

        var match = CheckTrip(id, tu.Trip, feedTime, r);
        var canceled = tu.Trip is { HasScheduleRelationship: true, ScheduleRelationship: TripDescriptor.Types.ScheduleRelationship.Canceled or TripDescriptor.Types.ScheduleRelationship.Deleted };
        if (tu.StopTimeUpdate.Count == 0 && !canceled)
        {
            r.Add("E041", id, "trip_update has no stop_time_updates");
        }

        var schedule = _matcher?.Schedule;
        var stopTimes = match.IsMatched ? schedule!.GetStopTimes(match.Instance.TripIndex) : [];
        StopTimeUpdate? previous = null;
        long previousTime = long.MinValue;
        for (var i = 0; i < tu.StopTimeUpdate.Count; i++)
        {
            var stu = tu.StopTimeUpdate[i];
            var relationship = stu.HasScheduleRelationship ? stu.ScheduleRelationship : StopTimeUpdate.Types.ScheduleRelationship.Scheduled;
            if (!stu.HasStopId && !stu.HasStopSequence)
            {
                r.Add("E040", id, $"stop_time_update {i} has neither stop_id nor stop_sequence");
            }
            else
            {
                r.StopsTotal++;
                var matched = false;
                if (stu.HasStopId && schedule is not null)
                {
                    matched = schedule.TryGetStop(stu.StopId, out _);
                    if (!matched)
                    {
                        r.Add("E011", id, $"stop_id '{stu.StopId}' is not in stops.txt");
                    }
                }

                if (stu.HasStopSequence && match.IsMatched)
                {
                    var k = schedule!.FindStopSequence(match.Instance.TripIndex, (int)Math.Min(stu.StopSequence, int.MaxValue));
                    if (k < 0)
                    {
                        r.Add("E051", id, $"stop_sequence {stu.StopSequence} is not in trip '{schedule.Trips[match.Instance.TripIndex].Id}'");
                    }
                    else
                    {
                        matched |= !stu.HasStopId;
                        if (stu.HasStopId && !string.Equals(schedule.Stops[stopTimes[k].StopIndex].Id, stu.StopId, StringComparison.Ordinal))
                        {
                            r.Add("E045", id, $"stop_sequence {stu.StopSequence} is stop '{schedule.Stops[stopTimes[k].StopIndex].Id}' in GTFS, not '{stu.StopId}'");
                        }
                    }
                }

                if (matched)
                {
                    r.StopsMatched++;
                }
            }

            if (previous is not null)
            {
                if (stu.HasStopSequence && previous.HasStopSequence)
                {
                    if (stu.StopSequence == previous.StopSequence)
                    {
                        r.Add("E036", id, $"stop_sequence {stu.StopSequence} repeats in consecutive stop_time_updates");
                    }
                    else if (stu.StopSequence < previous.StopSequence)
                    {
                        r.Add("E002", id, $"stop_time_updates are not sorted by stop_sequence ({previous.StopSequence} then {stu.StopSequence})");
                    }
                }

                if (stu.HasStopId && previous.HasStopId && string.Equals(stu.StopId, previous.StopId, StringComparison.Ordinal))
                {
                    r.Add("E037", id, $"stop_id '{stu.StopId}' repeats in consecutive stop_time_updates");
                }
            }

            if (relationship == StopTimeUpdate.Types.ScheduleRelationship.NoData)
            {
                if (stu.Arrival is not null || stu.Departure is not null)
                {
                    r.Add("E042", id, $"stop_time_update {i} is NO_DATA but has arrival or departure");
                }
            }
            else if (relationship != StopTimeUpdate.Types.ScheduleRelationship.Skipped)
            {
                if (stu.Arrival is null && stu.Departure is null)
                {
                    r.Add("E043", id, $"stop_time_update {i} has neither arrival nor departure");
                }

                CheckEvent(id, i, "arrival", stu.Arrival, r);
                CheckEvent(id, i, "departure", stu.Departure, r);
                if (stu.Arrival is { HasTime: true } a && stu.Departure is { HasTime: true } d && a.Time > d.Time)
                {
                    r.Add("E025", id, $"stop_time_update {i}: arrival {a.Time} is after departure {d.Time}");
                }

                foreach (var ev in (ReadOnlySpan<TripUpdate.Types.StopTimeEvent?>)[stu.Arrival, stu.Departure])
                {
                    if (ev is { HasTime: true })
                    {
                        if (ev.Time < previousTime)
                        {
                            r.Add("E022", id, $"stop_time_update {i}: time {ev.Time} is before the previous stop's {previousTime}");
                        }

                        previousTime = Math.Max(previousTime, ev.Time);
                    }
                }
            }

            previous = stu;
        }
    }

    private static void CheckEvent(string id, int i, string name, TripUpdate.Types.StopTimeEvent? ev, GtfsRtValidationResult r)
    {
        if (ev is not null && !ev.HasTime && !ev.HasDelay)
        {
            r.Add("E044", id, $"stop_time_update {i}: {name} has neither time nor delay");
        }
    }

    private void CheckVehicle(string id, VehiclePosition vp, ulong? headerTs, DateTime feedTime, GtfsRtValidationResult r)
    {
        if (vp.HasTimestamp && headerTs is { } h && vp.Timestamp > h)
        {
            r.Add("E012", id, $"vehicle.timestamp {vp.Timestamp} is newer than header.timestamp {h}");
        }

        if (vp.HasTimestamp && vp.Timestamp is < MinPosix or > MaxPosix)
        {
            r.Add("E001", id, $"vehicle.timestamp {vp.Timestamp} is not POSIX seconds");
        }

        if (vp.Vehicle is null || !(vp.Vehicle.HasId || vp.Vehicle.HasLabel))
        {
            r.Add("W002", id, "vehicle position has no vehicle id");
        }

        var match = CheckTrip(id, vp.Trip, feedTime, r);
        var schedule = _matcher?.Schedule;
        if (vp.HasStopId)
        {
            r.StopsTotal++;
            if (schedule is not null && schedule.TryGetStop(vp.StopId, out _))
            {
                r.StopsMatched++;
            }
            else if (schedule is not null)
            {
                r.Add("E011", id, $"stop_id '{vp.StopId}' is not in stops.txt");
            }
        }

        if (vp.Position is not { } p)
        {
            return;
        }

        var valid = float.IsFinite(p.Latitude) && float.IsFinite(p.Longitude) && Math.Abs(p.Latitude) <= 90 && Math.Abs(p.Longitude) <= 180 &&
                    !(p.Latitude == 0 && p.Longitude == 0);
        if (!valid)
        {
            r.Add("E026", id, $"position ({p.Latitude}, {p.Longitude}) is not a valid WGS84 location");
            return;
        }

        if (p.HasBearing && (p.Bearing < 0 || p.Bearing > 360 || !float.IsFinite(p.Bearing)))
        {
            r.Add("E027", id, $"bearing {p.Bearing} is not within 0-360");
        }

        if (p.HasSpeed && (p.Speed < 0 || p.Speed > _options.MaxSpeedMetresPerSecond || !float.IsFinite(p.Speed)))
        {
            r.Add("W004", id, $"speed {p.Speed} m/s is unrealistic");
        }

        if (match.IsMatched)
        {
            var off = schedule!.GetPath(match.Instance.TripIndex).Project(p.Latitude, p.Longitude).OffMetres;
            if (off > _options.MaxOffShapeMetres)
            {
                r.Add("E029", id, $"vehicle is {off:F0} m from the shape of trip '{schedule.Trips[match.Instance.TripIndex].Id}' (limit {_options.MaxOffShapeMetres:F0} m)");
            }
        }
    }

    private static void CheckAlert(string id, Alert alert, GtfsRtValidationResult r)
    {
        if (alert.InformedEntity.Count == 0)
        {
            r.Add("E032", id, "alert has no informed_entity");
        }

        foreach (var e in alert.InformedEntity)
        {
            if (!e.HasAgencyId && !e.HasRouteId && !e.HasRouteType && e.Trip is null && !e.HasStopId)
            {
                r.Add("E033", id, "alert informed_entity has no agency_id, route_id, route_type, trip or stop_id");
            }
        }
    }
}
