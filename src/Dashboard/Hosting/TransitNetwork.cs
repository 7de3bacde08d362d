namespace Fleet.Dashboard.Hosting;

/// <summary>A route, for <c>/api/routes</c> and the page's route filter.</summary>
/// <param name="Id">GTFS route_id.</param>
/// <param name="ShortName">route_short_name.</param>
/// <param name="LongName">route_long_name.</param>
/// <param name="Type">GTFS route_type.</param>
/// <param name="Color">route_color as <c>RRGGBB</c>, when given.</param>
public sealed record RouteInfo(string Id, string? ShortName, string? LongName, int Type, string? Color)
{
    /// <summary>route_text_color as <c>RRGGBB</c> (text on <see cref="Color"/>), when given.</summary>
    public string? TextColor { get; init; }
}

/// <summary>Route colours for feeds that give none: a stable palette by route id.</summary>
public static class RoutePalette
{
    // Twelve colours that read on a light map and differ from each other (Tableau 10 and two more).
    private static readonly string[] s_colors =
        ["1F77B4", "D62728", "2CA02C", "9467BD", "FF7F0E", "8C564B", "E377C2", "17BECF", "BCBD22", "7F7F7F", "1B9E77", "D95F02"];

    /// <summary>The route's own colour, else one of the palette picked by a stable hash of its id.</summary>
    public static string ColorOf(string routeId, string? given)
    {
        ArgumentNullException.ThrowIfNull(routeId);
        if (given is { Length: 6 })
        {
            return given;
        }

        // FNV-1a over the id's chars: the same route gets the same colour in every process.
        var hash = 2166136261u;
        foreach (var c in routeId)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return s_colors[hash % (uint)s_colors.Length];
    }

    /// <summary>
    /// Colours for the routes of one feed, by route id: the feed's own where it gives one, else the palette's in turn
    /// (routes ordered by id), so the routes of a feed get different colours and the same feed always the same ones.
    /// </summary>
    public static Dictionary<string, string> ColorsFor(IEnumerable<(string Id, string? Given)> routes)
    {
        ArgumentNullException.ThrowIfNull(routes);
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var next = 0;
        foreach (var (id, given) in routes.OrderBy(r => r.Id, StringComparer.Ordinal))
        {
            result[id] = given is { Length: 6 } ? given : s_colors[next++ % s_colors.Length];
        }

        return result;
    }

    /// <summary>Black or white, whichever reads better on <paramref name="color"/> (when the feed gives no text colour).</summary>
    public static string TextOn(string color)
    {
        ArgumentNullException.ThrowIfNull(color);
        var rgb = Convert.ToInt32(color, 16);
        var luma = (0.299 * ((rgb >> 16) & 0xff)) + (0.587 * ((rgb >> 8) & 0xff)) + (0.114 * (rgb & 0xff));
        return luma > 150 ? "000000" : "FFFFFF";
    }
}

/// <summary>A stop.</summary>
/// <param name="Id">GTFS stop_id.</param>
/// <param name="Name">stop_name.</param>
/// <param name="Latitude">WGS84 latitude.</param>
/// <param name="Longitude">WGS84 longitude.</param>
public sealed record StopInfo(string Id, string? Name, double Latitude, double Longitude)
{
    /// <summary>stop_code, the short code on the stop's sign, when given.</summary>
    public string? Code { get; init; }
}

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

    /// <summary>
    /// The route a user means by <paramref name="idOrName"/>: its route_id, else the one route whose short name it is
    /// (case-insensitive), else null. The API and the hub take either.
    /// </summary>
    public string? ResolveRoute(string idOrName)
    {
        ArgumentNullException.ThrowIfNull(idOrName);
        if (Routes.Any(r => r.Id == idOrName))
        {
            return idOrName;
        }

        var named = Routes.Where(r => string.Equals(r.ShortName, idOrName, StringComparison.OrdinalIgnoreCase)).Take(2).ToList();
        return named.Count == 1 ? named[0].Id : null;
    }

    /// <summary>One route by id, or null.</summary>
    public RouteInfo? Route(string routeId) => Routes.FirstOrDefault(r => r.Id == routeId);

    /// <summary>A trip's headsign, or null when unknown (a prediction for a trip outside the scheduled window is shown with it).</summary>
    public string? TripHeadsign(string tripId) => null;

    /// <summary>The base map as a GeoJSON FeatureCollection (route shapes as LineStrings, stops as Points), UTF-8.</summary>
    public ReadOnlyMemory<byte> GeoJson { get; }
}
