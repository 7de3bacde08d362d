using Fleet.Ingest.Events;

namespace Fleet.Tracking.Vehicles;

/// <summary>
/// Everything a <see cref="VehicleTracker"/> knows, as plain data: what a snapshot stores and recovery restores.
/// </summary>
/// <remarks>
/// The trip is kept by id and service date (plans are re-resolved from the catalog on restore). Per-stop arrays
/// are indexed like <see cref="Schedule.TripPlan.Stops"/>; times are UTC ticks, 0 when absent. Not thread-safe.
/// </remarks>
public sealed class VehicleTrackerState
{
    /// <summary>The vehicle id.</summary>
    public string VehicleId { get; set; } = string.Empty;

    /// <summary>Transport mode last reported.</summary>
    public TransportMode Mode { get; set; }

    /// <summary>Newest event time received (before reordering), ticks.</summary>
    public long LastMessageTicks { get; set; }

    /// <summary>Identity of the journey the vehicle last reported (see <see cref="TripKey"/>).</summary>
    public TripKey Key { get; set; }

    /// <summary>True once an HFP event came (then GTFS-RT positions of the same vehicle id are ignored).</summary>
    public bool HfpSeen { get; set; }

    /// <summary>The journey GTFS-RT last named for the vehicle (kept apart from HFP's key, which names it differently).</summary>
    public TripKey RtKey { get; set; }

    /// <summary>Identity of the journey that ended last (it does not restart on its own trailing messages).</summary>
    public TripKey EndedKey { get; set; }

    /// <summary>trip_id of the trip that ended last (its trailing messages from any source do not restart it).</summary>
    public string? EndedTripId { get; set; }

    /// <summary>Service date of that trip.</summary>
    public DateOnly EndedTripDate { get; set; }

    /// <summary>trip_id of the current trip, null when off trip.</summary>
    public string? TripId { get; set; }

    /// <summary>Service date of the current trip.</summary>
    public DateOnly TripDate { get; set; }

    /// <summary>True once the feed sent stop events for this vehicle (then they decide arrivals and departures).</summary>
    public bool StopEventsMode { get; set; }

    /// <summary>Distance along the trip's path, -1 before the first matched position.</summary>
    public double Progress { get; set; } = -1;

    /// <summary>Time of the last matched position, ticks.</summary>
    public long ProgressTicks { get; set; }

    /// <summary>Latitude of the last position.</summary>
    public double Latitude { get; set; } = double.NaN;

    /// <summary>Longitude of the last position.</summary>
    public double Longitude { get; set; } = double.NaN;

    /// <summary>Position detection: the first stop not yet reached.</summary>
    public int NextStop { get; set; }

    /// <summary>Position detection: the stop the vehicle is in the zone of, -1 when none.</summary>
    public int AtStop { get; set; } = -1;

    /// <summary>Position detection: last time seen standing in <see cref="AtStop"/>'s zone, ticks.</summary>
    public long LastStandingTicks { get; set; }

    /// <summary>Highest stop index with an emitted arrival, -1 when none.</summary>
    public int LastEmitted { get; set; } = -1;

    /// <summary>Emitted arrival per stop, ticks.</summary>
    public long[] Arrivals { get; set; } = [];

    /// <summary>Emitted departure per stop, ticks.</summary>
    public long[] Departures { get; set; } = [];

    /// <summary>Position-detected arrival candidate per stop, ticks.</summary>
    public long[] PositionArrivals { get; set; } = [];

    /// <summary>Position-detected departure candidate per stop, ticks.</summary>
    public long[] PositionDepartures { get; set; } = [];

    /// <summary>Stop index of an ARR not yet confirmed by ARS, -1 when none.</summary>
    public int PendingArrStop { get; set; } = -1;

    /// <summary>Time of that ARR, ticks.</summary>
    public long PendingArrTicks { get; set; }

    /// <summary>Unscheduled journey: the stop of the current visit (feed stop id), null when none.</summary>
    public string? VisitStop { get; set; }

    /// <summary>Unscheduled journey: the route the feed named.</summary>
    public string? VisitRoute { get; set; }

    /// <summary>Unscheduled journey: the direction the feed named.</summary>
    public sbyte VisitDirection { get; set; } = -1;

    /// <summary>Unscheduled journey: arrival emitted for the visit.</summary>
    public bool VisitArrived { get; set; }

    /// <summary>Unscheduled journey: departure emitted for the visit.</summary>
    public bool VisitDeparted { get; set; }

    /// <summary>Current delay in seconds, positive when late.</summary>
    public int DelaySeconds { get; set; }

    /// <summary>True when <see cref="DelaySeconds"/> is known.</summary>
    public bool HasDelay { get; set; }

    /// <summary>Since when the vehicle is off route, ticks; 0 when on route.</summary>
    public long OffRouteSinceTicks { get; set; }

    /// <summary>True while an off-route alert is raised.</summary>
    public bool OffRouteAlerted { get; set; }

    /// <summary>True while a severe-delay alert is raised.</summary>
    public bool SevereDelayAlerted { get; set; }

    /// <summary>True while a stale alert is raised.</summary>
    public bool StaleAlerted { get; set; }

    /// <summary>Last prediction time, ticks.</summary>
    public long LastPredictionTicks { get; set; }

    /// <summary>The delay (seconds) the last prediction was made with.</summary>
    public int LastPredictionDelay { get; set; }

    /// <summary>Reordering watermark: released up to, ticks.</summary>
    public long ReleasedTicks { get; set; }

    /// <summary>Reordering: newest event time seen, ticks.</summary>
    public long MaxSeenTicks { get; set; }

    /// <summary>Events dropped as too late.</summary>
    public long LateEvents { get; set; }

    /// <summary>Duplicates dropped.</summary>
    public long DuplicateEvents { get; set; }

    /// <summary>Events accepted.</summary>
    public long AcceptedEvents { get; set; }

    /// <summary>Late events within the tolerance, released in the newest event's place.</summary>
    public long CorrectedEvents { get; set; }

    /// <summary>Journeys the catalog could not resolve.</summary>
    public long UnmatchedJourneys { get; set; }

    /// <summary>The highest source sequence number applied (0 when the source gives none); see <c>VehicleMessage.ReportEvent</c>.</summary>
    public long LastSequence { get; set; }

    /// <summary>Events held in the reorder buffer.</summary>
    public List<VehicleEvent> Pending { get; set; } = [];
}

/// <summary>
/// How a stream names the journey a vehicle is on: a GTFS trip_id, or HFP's (route, direction, operating day,
/// start time). The default value means "nothing said".
/// </summary>
/// <param name="TripId">GTFS trip_id (GTFS-RT).</param>
/// <param name="RouteId">Route id.</param>
/// <param name="DirectionId">GTFS direction_id; -1 when unknown.</param>
/// <param name="Day">Operating day / start date.</param>
/// <param name="StartSeconds">Start time in seconds after local midnight; -1 when absent.</param>
public readonly record struct TripKey(string? TripId, string? RouteId, sbyte DirectionId, DateOnly? Day, int StartSeconds)
{
    /// <summary>True when the key names a journey.</summary>
    public bool IsKnown => TripId is not null || RouteId is not null;

    /// <summary>The key an event carries, or the default when it names no journey.</summary>
    public static TripKey Of(in VehicleEvent e)
    {
        if (e.TripId is not null)
        {
            return new TripKey(e.TripId, e.RouteId, e.DirectionId, e.OperatingDay, e.StartTimeSeconds);
        }

        return e.RouteId is not null && e.OperatingDay is not null && e.StartTimeSeconds >= 0
            ? new TripKey(null, e.RouteId, e.DirectionId, e.OperatingDay, e.StartTimeSeconds)
            : default;
    }

    /// <inheritdoc />
    public override string ToString() =>
        TripId ?? $"{RouteId}/{DirectionId}/{Day:yyyy-MM-dd}/{StartSeconds}";
}
