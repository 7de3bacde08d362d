namespace Fleet.Tracking.Schedule;

/// <summary>
/// The read-only view of the schedule that tracking needs: finding the trip a vehicle is on from what each stream
/// says about it, as a <see cref="TripPlan"/> with UTC times on its service date.
/// </summary>
/// <remarks>
/// Implementations are thread-safe (vehicles on every shard call them) and return the same plan instance for the
/// same trip and date, so plans may be compared by reference. <see cref="GtfsTripCatalog"/> adapts a GTFS
/// <c>Fleet.Gtfs.Schedule</c>.
/// </remarks>
public interface ITripCatalog
{
    /// <summary>
    /// The HFP (and GTFS-RT without trip_id) join: the trip of <paramref name="routeId"/> in direction
    /// <paramref name="directionId"/> (-1 when unknown) starting at <paramref name="startSeconds"/> after local
    /// midnight of <paramref name="serviceDate"/>.
    /// </summary>
    public bool TryFind(string routeId, int directionId, DateOnly serviceDate, int startSeconds, out TripPlan plan);

    /// <summary>
    /// The GTFS-RT join by trip_id. <paramref name="serviceDate"/> is the descriptor's start_date; when null, the
    /// service date is chosen as the one whose run of the trip is nearest to <paramref name="near"/>.
    /// </summary>
    public bool TryGet(string tripId, DateOnly? serviceDate, DateTime near, out TripPlan plan);
}
