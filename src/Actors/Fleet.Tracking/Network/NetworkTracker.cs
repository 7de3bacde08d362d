using Fleet.Tracking.Output;

namespace Fleet.Tracking.Network;

/// <summary>A GTFS-RT TripUpdate's statement about one stop (or, with <see cref="StopUpdateStatus.TripCancelled"/>, the whole trip).</summary>
public enum StopUpdateStatus : byte
{
    /// <summary>A prediction (arrival/departure time or delay).</summary>
    Scheduled,
    /// <summary>The stop is skipped.</summary>
    Skipped,
    /// <summary>No data for the stop.</summary>
    NoData,
    /// <summary>The trip is cancelled.</summary>
    TripCancelled,
}

/// <summary>One GTFS-RT stop time update, normalized for the trip and stop boards.</summary>
/// <param name="Time">Feed or update timestamp (event time), UTC.</param>
/// <param name="TripId">trip_id.</param>
/// <param name="ServiceDate">start_date when given.</param>
/// <param name="RouteId">route_id when given.</param>
/// <param name="VehicleId">The vehicle the feed names, if any.</param>
/// <param name="StopId">stop_id (may be null when only the sequence is given).</param>
/// <param name="StopSequence">stop_sequence, -1 when absent.</param>
/// <param name="Arrival">Predicted arrival, UTC.</param>
/// <param name="Departure">Predicted departure, UTC.</param>
/// <param name="DelaySeconds">Delay, positive when late.</param>
/// <param name="Status">Schedule relationship.</param>
public readonly record struct StopUpdate(
    DateTime Time, string TripId, DateOnly? ServiceDate, string? RouteId, string? VehicleId, string? StopId, int StopSequence,
    DateTime? Arrival, DateTime? Departure, int? DelaySeconds, StopUpdateStatus Status);

/// <summary>
/// The cross-vehicle stage: consumes what vehicles derive (arrivals, departures, predictions, trip starts and ends)
/// and the GTFS-RT trip updates, and keeps the trip board (the join of positions, trip updates and schedule per
/// trip), the stop board (upcoming arrivals, observed history, headways, bunching) and the aggregates.
/// </summary>
/// <remarks>
/// Deterministic given the order of its inputs; the replay feeds it in <see cref="DerivedEventOrder"/> per batch.
/// Not thread-safe for updates (one owner); <see cref="Aggregates"/>, <see cref="Trips"/> and <see cref="Stops"/>
/// may be queried from other threads.
/// </remarks>
public sealed class NetworkTracker
{
    private readonly TrackingOptions _options;

    /// <summary>Creates the stage.</summary>
    /// <param name="options">Thresholds, and whether TripUpdates' stop events are tracked.</param>
    /// <param name="catalog">The schedule's trips.</param>
    /// <param name="predictor">Predicts the trips tracked from TripUpdates' stop events
    /// (<see cref="TrackingOptions.TripUpdateStopEvents"/>); null: none are predicted.</param>
    public NetworkTracker(TrackingOptions options, Schedule.ITripCatalog catalog, Vehicles.IArrivalPredictor? predictor = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(catalog);
        _options = options;
        Aggregates = new TrackingAggregates(options);
        Trips = new TripBoard(catalog, options.TripUpdateStopEvents, predictor);
        Stops = new StopBoard(options);
    }

    /// <summary>Live aggregates.</summary>
    public TrackingAggregates Aggregates { get; }

    /// <summary>Per-trip join.</summary>
    public TripBoard Trips { get; }

    /// <summary>Per-stop arrivals and headways.</summary>
    public StopBoard Stops { get; }

    /// <summary>Takes one event a vehicle derived; publishes what follows from it (bunching alerts).</summary>
    public void OnDerived(DerivedEvent d, ITrackingOutput output)
    {
        ArgumentNullException.ThrowIfNull(d);
        ArgumentNullException.ThrowIfNull(output);
        switch (d.Type)
        {
            case DerivedEventType.TripStarted:
                Aggregates.OnTripStarted(d);
                Trips.OnTripStarted(d);
                break;
            case DerivedEventType.TripEnded:
                Aggregates.OnTripEnded(d);
                Trips.OnTripEnded(d);
                break;
            case DerivedEventType.Arrival:
                Aggregates.OnArrival(d);
                Trips.OnObserved(d);
                Stops.OnArrival(d, Aggregates, output);
                break;
            case DerivedEventType.Departure:
                Aggregates.OnDeparture(d);
                Trips.OnObserved(d);
                break;
            case DerivedEventType.Prediction:
                Stops.OnPrediction(d);
                break;
            case DerivedEventType.Alert:
                Aggregates.OnAlert(d);
                break;
            case DerivedEventType.VehicleState:
                Aggregates.OnVehicleState(d);
                break;
        }
    }

    /// <summary>Takes one GTFS-RT stop time update; publishes cancellation and skipped-stop alerts, and (with
    /// <see cref="TrackingOptions.TripUpdateStopEvents"/>) the arrival and departure it observed.</summary>
    public void OnStopUpdate(in StopUpdate update, ITrackingOutput output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (Trips.OnStopUpdate(update, Stops, output) is not { } observed)
        {
            return;
        }

        // With TrackingOptions.TripUpdateStopEvents: what the update observed, as a vehicle's own arrivals would be.
        Publish(observed, output);
    }

    /// <summary>
    /// After a batch of stop updates (a snapshot, or what one stream group carried): with
    /// <see cref="TrackingOptions.TripUpdateStopEvents"/>, one prediction round per trip tracked from stop events whose
    /// updates observed a stop or came with a newer poll, made once all of them are in.
    /// </summary>
    public void OnStopUpdatesDone(ITrackingOutput output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (Trips.EndOfStopUpdates() is { } rounds)
        {
            Publish(rounds, output);
        }
    }

    /// <summary>A vehicle position on <paramref name="tripId"/> went to tracking: with
    /// <see cref="TrackingOptions.TripUpdateStopEvents"/>, that trip is tracked from the positions, not from stop events.</summary>
    public void OnVehiclePosition(string tripId)
    {
        ArgumentNullException.ThrowIfNull(tripId);
        if (_options.TripUpdateStopEvents)
        {
            Trips.OnVehiclePosition(tripId);
        }
    }

    private void Publish(List<DerivedEvent> derived, ITrackingOutput output)
    {
        foreach (var d in derived)
        {
            output.Publish(d);
            OnDerived(d, output);
        }
    }

    /// <summary>The options in force.</summary>
    public TrackingOptions Options => _options;
}
