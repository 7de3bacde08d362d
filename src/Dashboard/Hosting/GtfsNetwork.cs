using System.Text.Json;
using Fleet.Gtfs;
using NetTopologySuite;
using NetTopologySuite.Features;
using NetTopologySuite.Geometries;
using NetTopologySuite.IO.Converters;

namespace Fleet.Dashboard.Hosting;

/// <summary>
/// The <see cref="ITransitNetwork"/> of a GTFS static feed: routes, stops, scheduled arrivals and the base map
/// (one LineString per route and shape, one Point per stop) as GeoJSON, NetTopologySuite features written by its
/// System.Text.Json converters (NetTopologySuite.IO.GeoJSON4STJ).
/// </summary>
/// <remarks>Immutable after construction; thread-safe. Frequency-based trips are not listed as scheduled arrivals.</remarks>
public sealed class GtfsNetwork : ITransitNetwork
{
    private readonly Schedule _schedule;
    private readonly Dictionary<string, StopInfo> _stops = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RouteInfo> _routesById;

    // Per stop index: (trip index, arrival) of every trip calling there, by arrival.
    private readonly (int Trip, ServiceTime Arrival, int Sequence)[][] _calls;

    /// <summary>Builds the network of a loaded schedule.</summary>
    public GtfsNetwork(Schedule schedule)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        _schedule = schedule;
        var colors = RoutePalette.ColorsFor(schedule.Routes.Select(r => (r.Id, r.Color)));
        Routes = [.. schedule.Routes.Select(r =>
        {
            var color = colors[r.Id];
            return new RouteInfo(r.Id, NullIfEmpty(r.ShortName), NullIfEmpty(r.LongName), r.RouteType, color)
            {
                TextColor = r.TextColor ?? RoutePalette.TextOn(color),
            };
        })];
        _routesById = Routes.ToDictionary(r => r.Id, StringComparer.Ordinal);
        foreach (var s in schedule.Stops)
        {
            _stops[s.Id] = new StopInfo(s.Id, s.Name, s.Latitude, s.Longitude) { Code = NullIfEmpty(s.Code) };
        }

        var calls = new List<(int, ServiceTime, int)>[schedule.Stops.Count];
        for (var t = 0; t < schedule.Trips.Count; t++)
        {
            if (schedule.Trips[t].IsFrequencyBased)
            {
                continue;
            }

            foreach (var st in schedule.GetStopTimes(t))
            {
                (calls[st.StopIndex] ??= []).Add((t, st.Arrival, st.Sequence));
            }
        }

        _calls = [.. calls.Select(c => c is null ? [] : c.OrderBy(x => x.Item2).ToArray())];
        GeoJson = BuildGeoJson(schedule, _routesById);
    }

    /// <summary>Loads a feed (zip or folder) and builds its network.</summary>
    public static GtfsNetwork Load(string path) => new(GtfsLoader.Load(path));

    /// <summary>The schedule behind the network.</summary>
    public Schedule Schedule => _schedule;

    /// <inheritdoc />
    public IReadOnlyList<RouteInfo> Routes { get; }

    /// <inheritdoc />
    public ReadOnlyMemory<byte> GeoJson { get; }

    /// <inheritdoc />
    public StopInfo? Stop(string stopId) => _stops.GetValueOrDefault(stopId);

    /// <inheritdoc />
    public string? TripHeadsign(string tripId) =>
        _schedule.TryGetTrip(tripId, out var trip) ? NullIfEmpty(_schedule.Trips[trip].Headsign) : null;

    /// <inheritdoc />
    public IReadOnlyList<ScheduledArrival> ScheduledArrivals(string stopId, DateTime fromUtc, DateTime toUtc, int max)
    {
        if (!_schedule.TryGetStop(stopId, out var stopIndex) || toUtc <= fromUtc)
        {
            return [];
        }

        var result = new List<ScheduledArrival>();
        // Service days can run past 24:00, so yesterday's service may still call here today.
        var first = _schedule.LocalDate(fromUtc).AddDays(-1);
        var last = _schedule.LocalDate(toUtc);
        for (var date = first; date <= last; date = date.AddDays(1))
        {
            var from = _schedule.ToServiceTime(date, fromUtc);
            var to = _schedule.ToServiceTime(date, toUtc);
            foreach (var (trip, arrival, sequence) in _calls[stopIndex])
            {
                if (arrival < from || arrival >= to)
                {
                    continue;
                }

                var t = _schedule.Trips[trip];
                if (!_schedule.IsServiceActive(t.ServiceIndex, date))
                {
                    continue;
                }

                result.Add(new ScheduledArrival(t.Id, _schedule.Routes[t.RouteIndex].Id, NullIfEmpty(t.Headsign), sequence, _schedule.ToUtc(date, arrival)));
            }
        }

        return [.. result.OrderBy(a => a.Scheduled).Take(max)];
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    // The base map with NetTopologySuite's features and its System.Text.Json GeoJSON writer: one LineString per
    // (route, shape) (a trip without a shape: its stop-to-stop line once per route and direction), one Point per stop.
    private static byte[] BuildGeoJson(Schedule schedule, Dictionary<string, RouteInfo> routes)
    {
        var factory = NtsGeometryServices.Instance.CreateGeometryFactory(srid: 4326);
        var features = new FeatureCollection();
        var seen = new HashSet<(int Route, int Shape, int Direction)>();
        for (var t = 0; t < schedule.Trips.Count; t++)
        {
            var trip = schedule.Trips[t];
            var key = (trip.RouteIndex, trip.ShapeIndex, trip.ShapeIndex >= 0 ? 0 : (int)trip.DirectionId);
            if (!seen.Add(key))
            {
                continue;
            }

            var path = schedule.GetPath(t);
            var coordinates = path.Line.Coordinates.Select(c =>
            {
                var (lat, lon) = schedule.Projection.ToWgs84(c.X, c.Y);
                return new Coordinate(Math.Round(lon, 6), Math.Round(lat, 6));
            }).ToArray();
            var route = routes[schedule.Routes[trip.RouteIndex].Id];
            var attributes = new AttributesTable { { "routeId", route.Id }, { "color", route.Color } };
            if (route.ShortName is { } shortName)
            {
                attributes.Add("shortName", shortName);
            }

            features.Add(new Feature(factory.CreateLineString(coordinates), attributes));
        }

        foreach (var s in schedule.Stops)
        {
            // Stations and entrances (location_type > 0) are not where vehicles stop.
            if (s.LocationType != 0 || double.IsNaN(s.Latitude))
            {
                continue;
            }

            var attributes = new AttributesTable { { "id", s.Id }, { "name", s.Name } };
            if (s.Code.Length > 0)
            {
                attributes.Add("code", s.Code);
            }

            features.Add(new Feature(factory.CreatePoint(new Coordinate(Math.Round(s.Longitude, 6), Math.Round(s.Latitude, 6))), attributes));
        }

        return JsonSerializer.SerializeToUtf8Bytes(features, s_geoJson);
    }

    private static readonly JsonSerializerOptions s_geoJson = new() { Converters = { new GeoJsonConverterFactory() } };
}
