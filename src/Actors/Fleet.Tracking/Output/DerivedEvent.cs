using Fleet.Ingest.Events;

namespace Fleet.Tracking.Output;

/// <summary>What a <see cref="DerivedEvent"/> reports.</summary>
public enum DerivedEventType : byte
{
    /// <summary>A vehicle arrived at a stop of its trip (or passed it).</summary>
    Arrival,
    /// <summary>A vehicle departed from a stop of its trip (or passed it).</summary>
    Departure,
    /// <summary>An alert was raised or cleared (see <see cref="AlertKind"/>).</summary>
    Alert,
    /// <summary>A predicted arrival of a vehicle's trip at a downstream stop.</summary>
    Prediction,
    /// <summary>A vehicle started a trip (internal: feeds the aggregates and the dashboard, not the events file).</summary>
    TripStarted,
    /// <summary>A vehicle ended a trip: completed, journey change, dead run or sign-off (internal).</summary>
    TripEnded,
    /// <summary>A vehicle's matched position (internal; only when <see cref="TrackingOptions.EmitVehicleStates"/>).</summary>
    VehicleState,
    /// <summary>
    /// A prediction round of a vehicle is complete (internal): the <see cref="Prediction"/>s of this vehicle with this
    /// <see cref="DerivedEvent.Time"/> are its whole forecast, and every prediction of an earlier round that this one
    /// did not repeat is withdrawn. Follows the round's predictions in both the per-vehicle order and
    /// <see cref="DerivedEventOrder"/>; an empty round (nothing left to predict) withdraws everything.
    /// </summary>
    PredictionRound,
}

/// <summary>The kind of an alert.</summary>
public enum AlertKind : byte
{
    /// <summary>Not an alert.</summary>
    None,
    /// <summary>More than 100 m from the trip's shape for more than 30 s.</summary>
    OffRoute,
    /// <summary>No message for 120 s of event time while on a trip.</summary>
    Stale,
    /// <summary>Headway to the vehicle ahead on the route under 25% of the scheduled headway.</summary>
    Bunching,
    /// <summary>More than 5 minutes late.</summary>
    SevereDelay,
    /// <summary>A GTFS-RT TripUpdate cancelled the trip.</summary>
    TripCancelled,
    /// <summary>A GTFS-RT TripUpdate skips a stop of the trip.</summary>
    StopSkipped,
}

/// <summary>How an arrival or departure was detected.</summary>
public enum DetectionSource : byte
{
    /// <summary>Not applicable.</summary>
    None,
    /// <summary>From the feed's stop events (HFP ARR/ARS/PAS/PDE/DEP).</summary>
    StopEvent,
    /// <summary>From positions matched along the shape.</summary>
    Position,
}

/// <summary>
/// One fact derived by tracking: an arrival, a departure, an alert, a prediction, or (internal) a trip start/end
/// or vehicle state. The unit of the output seam (<see cref="ITrackingOutput"/>) and of <c>--out-events</c>.
/// </summary>
/// <remarks>Immutable. Times are UTC event times, never the wall clock.</remarks>
public sealed record DerivedEvent
{
    /// <summary>What happened.</summary>
    public required DerivedEventType Type { get; init; }

    /// <summary>When it happened (event time, UTC).</summary>
    public required DateTime Time { get; init; }

    /// <summary>Vehicle, <c>operator/vehicle</c> for HFP; null for trip-level GTFS-RT alerts without a vehicle.</summary>
    public string? VehicleId { get; init; }

    /// <summary>GTFS trip_id.</summary>
    public string? TripId { get; init; }

    /// <summary>GTFS route_id.</summary>
    public string? RouteId { get; init; }

    /// <summary>GTFS direction_id; -1 when unknown.</summary>
    public sbyte DirectionId { get; init; } = -1;

    /// <summary>Service date of the trip.</summary>
    public DateOnly? ServiceDate { get; init; }

    /// <summary>GTFS stop_id.</summary>
    public string? StopId { get; init; }

    /// <summary>GTFS stop_sequence; -1 when not about a stop.</summary>
    public int StopSequence { get; init; } = -1;

    /// <summary>Schedule deviation in seconds, positive when late.</summary>
    public int? DelaySeconds { get; init; }

    /// <summary>Scheduled time of the arrival, departure or predicted stop.</summary>
    public DateTime? Scheduled { get; init; }

    /// <summary>Scheduled headway in seconds at the stop to the trip before on the route and direction (arrivals only).</summary>
    public int? ScheduledHeadwaySeconds { get; init; }

    /// <summary>Predicted time (predictions only).</summary>
    public DateTime? Predicted { get; init; }

    /// <summary>Lower end of the predicted range, the 10th percentile (predictions with a range only).</summary>
    public DateTime? PredictedLow { get; init; }

    /// <summary>Upper end of the predicted range, the 90th percentile (predictions with a range only).</summary>
    public DateTime? PredictedHigh { get; init; }

    /// <summary>The alert kind (alerts only).</summary>
    public AlertKind Kind { get; init; }

    /// <summary>True when an alert is cleared rather than raised.</summary>
    public bool Cleared { get; init; }

    /// <summary>How an arrival or departure was detected.</summary>
    public DetectionSource Source { get; init; }

    /// <summary>A measure for the event: metres off route, headway seconds for bunching, metres along for states.</summary>
    public double? Value { get; init; }

    /// <summary>The other party: the vehicle ahead for bunching; the end reason for a trip end.</summary>
    public string? Other { get; init; }

    /// <summary>Transport mode of the vehicle.</summary>
    public TransportMode Mode { get; init; }

    /// <summary>Latitude (vehicle states), NaN otherwise.</summary>
    public double Latitude { get; init; } = double.NaN;

    /// <summary>Longitude (vehicle states), NaN otherwise.</summary>
    public double Longitude { get; init; } = double.NaN;

    /// <summary>
    /// Predictions: the <see cref="VehicleEvent.IngestTimestamp"/> of the input that caused it (0 when unknown), so
    /// the time from ingest to a client can be measured. Never written out.
    /// </summary>
    public long IngestTimestamp { get; init; }

    /// <summary>
    /// Predictions: true when the stop belongs to the block's next trip (the trip the vehicle serves after its
    /// current one), not to the trip it is on. Never written out.
    /// </summary>
    public bool NextTrip { get; init; }

    /// <summary>True for the types written to the events file (arrival, departure, alert, prediction).</summary>
    public bool IsPublic => Type <= DerivedEventType.Prediction;
}
