namespace Fleet.Dashboard.Hosting;

/// <summary>A route, for <c>/api/routes</c> and the page's route filter.</summary>
/// <param name="Id">GTFS route_id.</param>
/// <param name="ShortName">route_short_name.</param>
/// <param name="LongName">route_long_name.</param>
/// <param name="Type">GTFS route_type.</param>
/// <param name="Color">route_color as <c>RRGGBB</c>, when given.</param>
public sealed record RouteInfo(string Id, string? ShortName, string? LongName, int Type, string? Color);

/// <summary>A stop.</summary>
/// <param name="Id">GTFS stop_id.</param>
/// <param name="Name">stop_name.</param>
/// <param name="Latitude">WGS84 latitude.</param>
/// <param name="Longitude">WGS84 longitude.</param>
public sealed record StopInfo(string Id, string? Name, double Latitude, double Longitude);

/// <summary>A scheduled arrival of a trip at a stop.</summary>
/// <param name="TripId">GTFS trip_id.</param>
/// <param name="RouteId">GTFS route_id.</param>
/// <param name="Headsign">trip_headsign, when given.</param>
/// <param name="StopSequence">stop_sequence.</param>
/// <param name="Scheduled">Scheduled arrival, UTC.</param>
public sealed record ScheduledArrival(string TripId, string RouteId, string? Headsign, int StopSequence, DateTime Scheduled);

/// <summary>
/// What the host knows of the static network (from a GTFS feed): routes, stops, the schedule at a stop and the
/// base map. Absent (not registered) when <c>fleet serve</c> runs without a GTFS feed.
/// </summary>
/// <remarks>Implementations are immutable after construction and thread-safe.</remarks>
public interface ITransitNetwork
{
    /// <summary>Every route.</summary>
    public IReadOnlyList<RouteInfo> Routes { get; }

    /// <summary>One stop, or null when unknown.</summary>
    public StopInfo? Stop(string stopId);

    /// <summary>Scheduled arrivals at a stop in <c>[from, to)</c>, soonest first, at most <paramref name="max"/>.</summary>
    public IReadOnlyList<ScheduledArrival> ScheduledArrivals(string stopId, DateTime fromUtc, DateTime toUtc, int max);

    /// <summary>A trip's headsign, or null when unknown (a prediction for a trip outside the scheduled window is shown with it).</summary>
    public string? TripHeadsign(string tripId) => null;

    /// <summary>The base map as a GeoJSON FeatureCollection (route shapes as LineStrings, stops as Points), UTF-8.</summary>
    public ReadOnlyMemory<byte> GeoJson { get; }
}
