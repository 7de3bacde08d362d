using Fleet.Ingest.Events;
using Fleet.Tracking.Output;

namespace Fleet.Tracking.Network;

/// <summary>Per-route figures.</summary>
/// <param name="RouteId">route_id.</param>
/// <param name="ActiveVehicles">Vehicles on a trip of the route now.</param>
/// <param name="Arrivals">Observed arrivals.</param>
/// <param name="MeanArrivalDelaySeconds">Mean delay over those arrivals.</param>
/// <param name="MeanCurrentDelaySeconds">Mean of the active vehicles' latest delays; null when none is known.</param>
/// <param name="OnTimeArrivals">Arrivals between the on-time bounds (1 min early to 5 min late by default).</param>
/// <param name="OnTimePerformance">OnTimeArrivals / Arrivals; null without arrivals.</param>
/// <param name="MeanHeadwaySeconds">Mean observed headway at its stops; null without any.</param>
public sealed record RouteFigures(
    string RouteId, int ActiveVehicles, long Arrivals, double? MeanArrivalDelaySeconds, double? MeanCurrentDelaySeconds,
    long OnTimeArrivals, double? OnTimePerformance, double? MeanHeadwaySeconds);

/// <summary>Headway figures at one stop of one route.</summary>
/// <param name="RouteId">route_id.</param>
/// <param name="StopId">stop_id.</param>
/// <param name="LastHeadwaySeconds">The latest observed headway.</param>
/// <param name="LastScheduledHeadwaySeconds">Its scheduled headway, when known.</param>
/// <param name="MeanHeadwaySeconds">Mean observed headway.</param>
/// <param name="Count">Headways observed.</param>
public sealed record StopHeadway(string RouteId, string StopId, int LastHeadwaySeconds, int? LastScheduledHeadwaySeconds, double MeanHeadwaySeconds, long Count);

/// <summary>A consistent copy of every aggregate at one moment.</summary>
/// <param name="ActiveByMode">Vehicles on a trip, by transport mode.</param>
/// <param name="Routes">Per-route figures, by route_id.</param>
/// <param name="Headways">Per route and stop headways, by route_id then stop_id.</param>
/// <param name="Alerts">Alerts raised, by kind.</param>
public sealed record AggregatesSnapshot(
    IReadOnlyDictionary<TransportMode, int> ActiveByMode, IReadOnlyList<RouteFigures> Routes,
    IReadOnlyList<StopHeadway> Headways, IReadOnlyDictionary<AlertKind, long> Alerts);

/// <summary>
/// Continuously updated aggregates: active vehicles per mode and route, average delay per route, headways per route
/// and stop, on-time performance per route (arrivals between <see cref="TrackingOptions.OnTimeEarlySeconds"/> early
/// and <see cref="TrackingOptions.OnTimeLateSeconds"/> late).
/// </summary>
/// <remarks>Thread-safe: updates and <see cref="Snapshot"/> take one lock.</remarks>
public sealed class TrackingAggregates
{
    private readonly Lock _gate = new();
    private readonly TrackingOptions _options;
    private readonly Dictionary<string, (TransportMode Mode, string Route)> _active = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _currentDelay = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RouteStats> _routes = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Route, string Stop), HeadwayStats> _headways = [];
    private readonly Dictionary<AlertKind, long> _alerts = [];

    /// <summary>Creates empty aggregates.</summary>
    public TrackingAggregates(TrackingOptions options) => _options = options;

    /// <summary>Vehicles on a trip now.</summary>
    public int ActiveVehicles
    {
        get
        {
            lock (_gate)
            {
                return _active.Count;
            }
        }
    }

    /// <summary>A consistent copy of every aggregate.</summary>
    public AggregatesSnapshot Snapshot()
    {
        lock (_gate)
        {
            var byMode = _active.Values.GroupBy(a => a.Mode).ToDictionary(g => g.Key, g => g.Count());
            var activeByRoute = _active.Values.GroupBy(a => a.Route, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
            var routes = new List<RouteFigures>();
            foreach (var route in _routes.Keys.Union(activeByRoute.Keys, StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                _routes.TryGetValue(route, out var s);
                var current = _active.Where(a => a.Value.Route == route && _currentDelay.ContainsKey(a.Key))
                    .Select(a => (double)_currentDelay[a.Key]).ToList();
                routes.Add(new RouteFigures(
                    route,
                    activeByRoute.GetValueOrDefault(route),
                    s?.Arrivals ?? 0,
                    s is { Arrivals: > 0 } ? (double)s.DelaySum / s.Arrivals : null,
                    current.Count > 0 ? current.Average() : null,
                    s?.OnTime ?? 0,
                    s is { Arrivals: > 0 } ? (double)s.OnTime / s.Arrivals : null,
                    s is { Headways: > 0 } ? (double)s.HeadwaySum / s.Headways : null));
            }

            var headways = _headways
                .OrderBy(h => h.Key.Route, StringComparer.Ordinal).ThenBy(h => h.Key.Stop, StringComparer.Ordinal)
                .Select(h => new StopHeadway(h.Key.Route, h.Key.Stop, h.Value.Last, h.Value.LastScheduled, (double)h.Value.Sum / h.Value.Count, h.Value.Count))
                .ToList();
            return new AggregatesSnapshot(byMode, routes, headways, new Dictionary<AlertKind, long>(_alerts));
        }
    }

    internal void OnTripStarted(DerivedEvent d)
    {
        lock (_gate)
        {
            _active[d.VehicleId!] = (d.Mode, d.RouteId ?? string.Empty);
            _currentDelay.Remove(d.VehicleId!);
        }
    }

    internal void OnTripEnded(DerivedEvent d)
    {
        lock (_gate)
        {
            _active.Remove(d.VehicleId!);
            _currentDelay.Remove(d.VehicleId!);
        }
    }

    internal void OnArrival(DerivedEvent d)
    {
        lock (_gate)
        {
            if (d.RouteId is null || d.DelaySeconds is not { } delay)
            {
                return;
            }

            var s = Route(d.RouteId);
            s.Arrivals++;
            s.DelaySum += delay;
            if (delay >= -_options.OnTimeEarlySeconds && delay <= _options.OnTimeLateSeconds)
            {
                s.OnTime++;
            }

            if (d.VehicleId is not null)
            {
                _currentDelay[d.VehicleId] = delay;
            }
        }
    }

    internal void OnDeparture(DerivedEvent d)
    {
        if (d.VehicleId is null || d.DelaySeconds is not { } delay)
        {
            return;
        }

        lock (_gate)
        {
            if (_active.ContainsKey(d.VehicleId))
            {
                _currentDelay[d.VehicleId] = delay;
            }
        }
    }

    internal void OnVehicleState(DerivedEvent d) => OnDeparture(d);

    internal void OnAlert(DerivedEvent d)
    {
        if (d.Cleared)
        {
            return;
        }

        lock (_gate)
        {
            _alerts[d.Kind] = _alerts.GetValueOrDefault(d.Kind) + 1;
        }
    }

    internal void OnHeadway(string? routeId, string stopId, int headway, int? scheduled)
    {
        if (routeId is null)
        {
            return;
        }

        lock (_gate)
        {
            var s = Route(routeId);
            s.Headways++;
            s.HeadwaySum += headway;
            if (!_headways.TryGetValue((routeId, stopId), out var h))
            {
                _headways[(routeId, stopId)] = h = new HeadwayStats();
            }

            h.Last = headway;
            h.LastScheduled = scheduled;
            h.Sum += headway;
            h.Count++;
        }
    }

    private RouteStats Route(string routeId)
    {
        if (!_routes.TryGetValue(routeId, out var s))
        {
            _routes[routeId] = s = new RouteStats();
        }

        return s;
    }

    private sealed class RouteStats
    {
        public long Arrivals;
        public long OnTime;
        public long DelaySum;
        public long Headways;
        public long HeadwaySum;
    }

    private sealed class HeadwayStats
    {
        public int Last;
        public int? LastScheduled;
        public long Sum;
        public long Count;
    }
}
