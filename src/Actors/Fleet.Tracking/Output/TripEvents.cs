using Fleet.Ingest.Events;
using Fleet.Tracking.Schedule;

namespace Fleet.Tracking.Output;

/// <summary>Derived events about a vehicle on a planned trip: the trip's ids, service date and mode filled in one place.</summary>
internal static class TripEvents
{
    /// <summary>An event about <paramref name="vehicleId"/> on <paramref name="plan"/> (a round's end, a trip's start or end).</summary>
    public static DerivedEvent On(TripPlan plan, DerivedEventType type, DateTime time, string? vehicleId, TransportMode mode) => new()
    {
        Type = type,
        Time = time,
        VehicleId = vehicleId,
        TripId = plan.TripId,
        RouteId = plan.RouteId,
        DirectionId = plan.DirectionId,
        ServiceDate = plan.ServiceDate,
        Mode = mode,
    };

    /// <summary>An arrival or departure of <paramref name="vehicleId"/> at <paramref name="stop"/> of <paramref name="plan"/>
    /// at <paramref name="time"/>, with its delay against <paramref name="scheduled"/>.</summary>
    public static DerivedEvent AtStop(
        TripPlan plan, PlannedStop stop, DerivedEventType type, DateTime time, DateTime scheduled, string? vehicleId, TransportMode mode, DetectionSource source) => new()
    {
        Type = type,
        Time = time,
        VehicleId = vehicleId,
        TripId = plan.TripId,
        RouteId = plan.RouteId,
        DirectionId = plan.DirectionId,
        ServiceDate = plan.ServiceDate,
        StopId = stop.StopId,
        StopSequence = stop.Sequence,
        Scheduled = scheduled,
        DelaySeconds = (int)Math.Round((time - scheduled).TotalSeconds),
        Source = source,
        Mode = mode,
    };
}
