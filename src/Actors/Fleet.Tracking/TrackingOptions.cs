namespace Fleet.Tracking;

/// <summary>Thresholds of tracking. The defaults are the ones the issue specifies.</summary>
public sealed class TrackingOptions
{
    /// <summary>
    /// How late (in event time) an event may arrive and still be put in order; later ones are counted and dropped
    /// (unless within <see cref="LateTolerance"/>). Every event is held this long before it is tracked: the
    /// replay and analysis default is 60 s; live tracking uses <see cref="Live"/> (zero).
    /// </summary>
    public TimeSpan Lateness { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// An event that comes after a newer one of its vehicle, by at most this much, is tracked at once in the newer
    /// one's place instead of being dropped (counted as corrected); zero drops every late event. See
    /// <see cref="Vehicles.EventReorderBuffer"/>.
    /// </summary>
    public TimeSpan LateTolerance { get; set; }

    /// <summary>The live default: nothing held (a report is tracked when it arrives), 2 s of late tolerance.</summary>
    public static TrackingOptions Live() => new() { Lateness = TimeSpan.Zero, LateTolerance = TimeSpan.FromSeconds(2) };

    /// <summary>Distance from the shape beyond which a vehicle is off route.</summary>
    public double OffRouteMetres { get; set; } = 100;

    /// <summary>How long a vehicle must stay off route before the alert.</summary>
    public TimeSpan OffRouteFor { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Event-time silence after which a vehicle on a trip is stale.</summary>
    public TimeSpan StaleAfter { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>Bunching: observed headway under this fraction of the scheduled headway.</summary>
    public double BunchingFraction { get; set; } = 0.25;

    /// <summary>Delay (seconds, late) above which the severe-delay alert is raised.</summary>
    public int SevereDelaySeconds { get; set; } = 300;

    /// <summary>On time: at most this many seconds early.</summary>
    public int OnTimeEarlySeconds { get; set; } = 60;

    /// <summary>On time: at most this many seconds late.</summary>
    public int OnTimeLateSeconds { get; set; } = 300;

    /// <summary>Half-width of a stop's zone along the shape for position-based detection, metres.</summary>
    public double StopZoneMetres { get; set; } = 25;

    /// <summary>Below this speed (m/s) a vehicle counts as standing.</summary>
    public double StandingSpeed { get; set; } = 0.5;

    /// <summary>Use the feed's stop events (ARR/ARS/PAS/PDE/DEP) when it has them; false uses positions only.</summary>
    public bool UseStopEvents { get; set; } = true;

    /// <summary>
    /// Track trips from the observed arrivals and departures GTFS-RT TripUpdates report (a stop time at or before the
    /// update's timestamp): arrival and departure events for trips no vehicle position tracks, as a feed of
    /// TripUpdates alone needs (Auckland's). Off by default: with positions, tracking detects the stops itself.
    /// </summary>
    public bool TripUpdateStopEvents { get; set; }

    /// <summary>Emit a <c>VehicleState</c> event for every matched position (for the live map; off for replay files).</summary>
    public bool EmitVehicleStates { get; set; }

    /// <summary>
    /// Event-time interval between predictions of a vehicle. Predictions are also recomputed after every departure
    /// (a stop passed) and when the delay moved by more than <see cref="PredictionDelayChangeSeconds"/>.
    /// </summary>
    public TimeSpan PredictionInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>A delay change (seconds) since the last prediction that triggers a new one before the interval.</summary>
    public int PredictionDelayChangeSeconds { get; set; } = 10;

    /// <summary>Checks ranges; throws naming the bad value.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(Lateness, TimeSpan.Zero, nameof(Lateness));
        ArgumentOutOfRangeException.ThrowIfLessThan(LateTolerance, TimeSpan.Zero, nameof(LateTolerance));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(OffRouteMetres, nameof(OffRouteMetres));
        ArgumentOutOfRangeException.ThrowIfLessThan(StaleAfter, TimeSpan.FromSeconds(1), nameof(StaleAfter));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(BunchingFraction, nameof(BunchingFraction));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(StopZoneMetres, nameof(StopZoneMetres));
    }
}
