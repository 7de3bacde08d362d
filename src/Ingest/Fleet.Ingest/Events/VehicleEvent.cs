namespace Fleet.Ingest.Events;

/// <summary>The kind of a normalized vehicle event.</summary>
/// <remarks>
/// The first group mirrors the HSL HFP v2 event types one to one (see
/// https://digitransit.fi/en/developers/apis/5-realtime-api/vehicle-positions/high-frequency-positioning/).
/// <see cref="TripUpdateStop"/> is a GTFS-Realtime per-stop prediction, normalized into the same record.
/// </remarks>
public enum EventType : byte
{
    /// <summary>Not a known event type; never produced by a successful parse.</summary>
    Unknown = 0,
    /// <summary>Vehicle position.</summary>
    Vp,
    /// <summary>Vehicle will soon arrive at a stop.</summary>
    Due,
    /// <summary>Vehicle arrives inside a stop radius.</summary>
    Arr,
    /// <summary>Vehicle has arrived to a stop.</summary>
    Ars,
    /// <summary>Vehicle departs from a stop and leaves the stop radius.</summary>
    Dep,
    /// <summary>Vehicle is ready to depart from a stop.</summary>
    Pde,
    /// <summary>Vehicle passes through a stop without stopping.</summary>
    Pas,
    /// <summary>Vehicle is waiting at a stop.</summary>
    Wait,
    /// <summary>Doors opened.</summary>
    Doo,
    /// <summary>Doors closed.</summary>
    Doc,
    /// <summary>Traffic light priority request.</summary>
    Tlr,
    /// <summary>Traffic light priority acknowledgement.</summary>
    Tla,
    /// <summary>Driver signed in.</summary>
    Da,
    /// <summary>Driver signed out.</summary>
    Dout,
    /// <summary>Driver selected the block.</summary>
    Ba,
    /// <summary>Driver signed out from the block.</summary>
    Bout,
    /// <summary>Vehicle signed in to a service journey.</summary>
    Vja,
    /// <summary>Vehicle signed off from a service journey.</summary>
    Vjout,
    /// <summary>A GTFS-Realtime TripUpdate's prediction for one stop of a trip.</summary>
    TripUpdateStop,
}

/// <summary>Where a normalized event came from.</summary>
public enum EventSource : byte
{
    /// <summary>HSL High-Frequency Positioning over MQTT (v1 or v2).</summary>
    Hfp,
    /// <summary>A GTFS-Realtime VehiclePositions or TripUpdates feed.</summary>
    GtfsRt,
}

/// <summary>The journey type of an HFP topic.</summary>
public enum JourneyType : byte
{
    /// <summary>Not given.</summary>
    Unknown = 0,
    /// <summary>In service on a journey.</summary>
    Journey,
    /// <summary>Out of service, driving without passengers.</summary>
    Deadrun,
    /// <summary>Signed off.</summary>
    Signoff,
}

/// <summary>Transport mode, as in the HFP topic.</summary>
public enum TransportMode : byte
{
    /// <summary>Not given.</summary>
    Unknown = 0,
    /// <summary>Bus.</summary>
    Bus,
    /// <summary>Tram.</summary>
    Tram,
    /// <summary>Train.</summary>
    Train,
    /// <summary>Metro.</summary>
    Metro,
    /// <summary>Ferry.</summary>
    Ferry,
    /// <summary>U-line bus.</summary>
    UBus,
    /// <summary>Robot bus.</summary>
    Robot,
}

/// <summary>How the position was obtained (HFP <c>loc</c>).</summary>
public enum LocationSource : byte
{
    /// <summary>Not given.</summary>
    Unknown = 0,
    /// <summary>GPS fix.</summary>
    Gps,
    /// <summary>Odometer-based.</summary>
    Odometer,
    /// <summary>Manually placed.</summary>
    Manual,
    /// <summary>Dead reckoning.</summary>
    DeadReckoning,
    /// <summary>Explicitly not available (<c>N/A</c>).</summary>
    NotAvailable,
}

/// <summary>
/// One normalized vehicle event: an HFP message of any type, a GTFS-RT vehicle position, or a GTFS-RT
/// trip update's prediction for one stop.
/// </summary>
/// <remarks>
/// <para>Conventions, fixed for the whole code base:</para>
/// <list type="bullet">
/// <item><see cref="VehicleId"/> is <c>operator/vehicle</c> as in the HFP topic, zero padded (<c>0018/01029</c>);
/// for GTFS-RT it is <c>feed:vehicle_id</c>-free: the feed's vehicle id as given.</item>
/// <item><see cref="DelaySeconds"/> is positive when the vehicle is late (as GTFS-RT); HFP <c>dl</c> is negated.</item>
/// <item><see cref="DirectionId"/> is the GTFS direction_id (0 or 1); HFP direction 1|2 maps to 0|1; -1 when unknown.</item>
/// <item>Times are UTC. <see cref="StartTimeSeconds"/> is seconds after local midnight of the operating day (may exceed 24 h:
/// HFP gives <c>start</c> on a 24-hour clock, so a journey starting after midnight is moved past 24 h by the parser).</item>
/// <item>Absent numbers are <see cref="double.NaN"/> / <see cref="float.NaN"/> / -1 as documented per field; absent strings are null.</item>
/// </list>
/// <para>A mutable struct so a parser can fill it in place without allocating; copy it freely.</para>
/// </remarks>
#pragma warning disable CA1051 // A plain data record filled in place by parsers: fields, not properties, on purpose.
public struct VehicleEvent
{
    /// <summary>Where the event came from.</summary>
    public EventSource Source;

    /// <summary>The event type.</summary>
    public EventType Type;

    /// <summary>Journey type from the HFP topic (unknown for GTFS-RT).</summary>
    public JourneyType Journey;

    /// <summary>Transport mode.</summary>
    public TransportMode Mode;

    /// <summary>
    /// True when the HFP topic's temporal type is <c>upcoming</c>: the message describes the journey the vehicle
    /// will drive next, not the one it is on.
    /// </summary>
    public bool Upcoming;

    /// <summary>Vehicle id, <c>operator/vehicle</c> for HFP.</summary>
    public string VehicleId;

    /// <summary>Event time from the vehicle (HFP <c>tst</c>; GTFS-RT position or feed timestamp), UTC.</summary>
    public DateTime EventTime;

    /// <summary>When the message was received (recording line time or wall clock), UTC.</summary>
    public DateTime ReceiveTime;

    /// <summary>Latitude in degrees (WGS84), NaN when absent.</summary>
    public double Latitude;

    /// <summary>Longitude in degrees (WGS84), NaN when absent.</summary>
    public double Longitude;

    /// <summary>Speed in m/s, NaN when absent.</summary>
    public float Speed;

    /// <summary>Heading in degrees clockwise from north, NaN when absent.</summary>
    public float Heading;

    /// <summary>Acceleration in m/s², NaN when absent.</summary>
    public float Acceleration;

    /// <summary>Odometer in metres, NaN when absent.</summary>
    public double Odometer;

    /// <summary>Door status: 0 closed, 1 open, -1 unknown.</summary>
    public sbyte Doors;

    /// <summary>Schedule deviation in seconds, positive when late; null when absent.</summary>
    public int? DelaySeconds;

    /// <summary>Operating day (local date of the schedule).</summary>
    public DateOnly? OperatingDay;

    /// <summary>Scheduled start time of the journey in seconds after local midnight of <see cref="OperatingDay"/>; -1 when absent.</summary>
    public int StartTimeSeconds;

    /// <summary>Route id (HFP <c>route</c> / GTFS route_id).</summary>
    public string? RouteId;

    /// <summary>GTFS direction_id, 0 or 1; -1 when unknown.</summary>
    public sbyte DirectionId;

    /// <summary>Trip id when the source names one (GTFS-RT).</summary>
    public string? TripId;

    /// <summary>Stop id of a stop event or a trip update stop; the next stop for positions when known.</summary>
    public string? StopId;

    /// <summary>Stop sequence of a trip update stop; -1 when absent.</summary>
    public int StopSequence;

    /// <summary>Scheduled arrival at <see cref="StopId"/> (HFP <c>ttarr</c>), UTC.</summary>
    public DateTime? ScheduledArrival;

    /// <summary>Scheduled departure from <see cref="StopId"/> (HFP <c>ttdep</c>), UTC.</summary>
    public DateTime? ScheduledDeparture;

    /// <summary>Predicted arrival at <see cref="StopId"/> (GTFS-RT trip update), UTC.</summary>
    public DateTime? PredictedArrival;

    /// <summary>Predicted departure from <see cref="StopId"/> (GTFS-RT trip update), UTC.</summary>
    public DateTime? PredictedDeparture;

    /// <summary>Occupancy, 0 to 100 (HFP <c>occu</c>); -1 when absent.</summary>
    public int Occupancy;

    /// <summary>Source of the position.</summary>
    public LocationSource Location;

    /// <summary>Journey number (HFP <c>jrn</c>); -1 when absent.</summary>
    public int JourneyNumber;

    /// <summary>
    /// When the message entered Fleet, as a <see cref="TimeProvider.GetTimestamp"/> value of the process (0 when not
    /// stamped): carried through tracking to the predictions it causes, to measure ingest-to-client latency. Local to
    /// the process, so never persisted.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public long IngestTimestamp;

    /// <summary>Creates an event with every optional field set to its documented "absent" value.</summary>
    public static VehicleEvent Empty => new()
    {
        VehicleId = string.Empty,
        Latitude = double.NaN,
        Longitude = double.NaN,
        Speed = float.NaN,
        Heading = float.NaN,
        Acceleration = float.NaN,
        Odometer = double.NaN,
        Doors = -1,
        StartTimeSeconds = -1,
        DirectionId = -1,
        StopSequence = -1,
        Occupancy = -1,
        JourneyNumber = -1,
    };

    /// <summary>True when both coordinates are present.</summary>
    public readonly bool HasPosition => !double.IsNaN(Latitude) && !double.IsNaN(Longitude);
}
#pragma warning restore CA1051
