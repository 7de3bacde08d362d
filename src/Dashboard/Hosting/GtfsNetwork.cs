using System.Text.Json;
using Fleet.Gtfs;

namespace Fleet.Dashboard.Hosting;

/// <summary>
/// The <see cref="ITransitNetwork"/> of a GTFS static feed: routes, stops, scheduled arrivals and the base map
/// (one LineString per route and shape, one Point per stop) as GeoJSON written with System.Text.Json.
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

    private static byte[] BuildGeoJson(Schedule schedule, Dictionary<string, RouteInfo> routes)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("type", "FeatureCollection");
            w.WriteStartArray("features");
            // One line per (route, shape); a trip without a shape contributes its stop-to-stop line once per route and direction.
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
                w.WriteStartObject();
                w.WriteString("type", "Feature");
                w.WriteStartObject("properties");
                var route = routes[schedule.Routes[trip.RouteIndex].Id];
                w.WriteString("routeId", route.Id);
                w.WriteString("color", route.Color);
                if (route.ShortName is { } shortName)
                {
                    w.WriteString("shortName", shortName);
                }

                w.WriteEndObject();
                w.WriteStartObject("geometry");
                w.WriteString("type", "LineString");
                w.WriteStartArray("coordinates");
                foreach (var c in path.Line.Coordinates)
                {
                    var (lat, lon) = schedule.Projection.ToWgs84(c.X, c.Y);
                    w.WriteStartArray();
                    w.WriteNumberValue(Math.Round(lon, 6));
                    w.WriteNumberValue(Math.Round(lat, 6));
                    w.WriteEndArray();
                }

                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndObject();
            }

            foreach (var s in schedule.Stops)
            {
                // Stations and entrances (location_type > 0) are not where vehicles stop.
                if (s.LocationType != 0 || double.IsNaN(s.Latitude))
                {
                    continue;
                }

                w.WriteStartObject();
                w.WriteString("type", "Feature");
                w.WriteStartObject("properties");
                w.WriteString("id", s.Id);
                w.WriteString("name", s.Name);
                if (s.Code.Length > 0)
                {
                    w.WriteString("code", s.Code);
                }

                w.WriteEndObject();
                w.WriteStartObject("geometry");
                w.WriteString("type", "Point");
                w.WriteStartArray("coordinates");
                w.WriteNumberValue(Math.Round(s.Longitude, 6));
                w.WriteNumberValue(Math.Round(s.Latitude, 6));
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return buffer.ToArray();
    }
}
