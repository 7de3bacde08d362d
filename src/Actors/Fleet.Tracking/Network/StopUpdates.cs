using Fleet.Ingest.Events;

namespace Fleet.Tracking.Network;

/// <summary>Turns the normalized GTFS-RT <see cref="EventType.TripUpdateStop"/> events into <see cref="StopUpdate"/>s.</summary>
public static class StopUpdates
{
    /// <summary>The stop update a TripUpdateStop event carries.</summary>
    public static StopUpdate From(in VehicleEvent e)
    {
        ArgumentNullException.ThrowIfNull(e.TripId);
        return new StopUpdate(
            e.EventTime,
            e.TripId,
            e.OperatingDay,
            e.RouteId,
            string.IsNullOrEmpty(e.VehicleId) ? null : e.VehicleId,
            e.StopId,
            e.StopSequence,
            e.PredictedArrival,
            e.PredictedDeparture,
            e.DelaySeconds,
            StopUpdateStatus.Scheduled);
    }
}
