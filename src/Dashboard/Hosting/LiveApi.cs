using Fleet.Actors.Hosting;
using System.Globalization;
using System.Text;
using Fleet.Dashboard.Live;
using Fleet.Dashboard.Sources;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Fleet.Dashboard.Hosting;

/// <summary>The REST API (<c>/api/...</c>), <c>/metrics</c> and the page's configuration.</summary>
public static class LiveApi
{
    /// <summary>Most arrivals returned for one stop.</summary>
    public const int MaxArrivals = 50;

    /// <summary>Maps every endpoint onto <paramref name="app"/>.</summary>
    public static void Map(IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var api = app.MapGroup("/api");

        api.MapGet("/vehicles", (LiveEvents live, IServiceProvider sp, string? route, string? bbox) =>
        {
            var box = default(BoundingBox);
            if (bbox is not null && !BoundingBox.TryParse(bbox, out box, out var error))
            {
                return Problems.BadRequest($"bbox '{bbox}': {error}");
            }

            if (route is not null && sp.GetService<ITransitNetwork>() is { Routes.Count: > 0 } network)
            {
                // A route by its id or by the short name riders know it by (?route=61).
                route = network.ResolveRoute(route) ?? route;
            }

            IEnumerable<VehicleState> all = live.Vehicles();
            if (route is not null)
            {
                all = all.Where(v => v.RouteId == route);
            }

            if (bbox is not null)
            {
                all = all.Where(v => box.Contains(v.Latitude, v.Longitude));
            }

            return Results.Ok(all.ToList());
        });

        // Vehicle ids contain '/' (operator/vehicle), so the id is a catch-all segment.
        api.MapGet("/vehicles/{**id}", (LiveEvents live, IServiceProvider sp, string id) =>
        {
            if (live.Vehicle(id) is not { } v)
            {
                return Problems.NotFound($"unknown vehicle '{id}'");
            }

            // HFP names a journey by route, direction and start (v.TripId), tracking by the GTFS trip it matched:
            // the vehicle's predictions are found by the vehicle (its latest round: the trip it is on in stop order,
            // then the block's next trip, marked nextTrip).
            var next = live.PredictionsOfVehicle(v.Id);
            var network = sp.GetService<ITransitNetwork>();
            return Results.Ok(new
            {
                vehicle = v,
                route = v.RouteId is null ? null : network?.Route(v.RouteId),
                nextStops = next.Select(p => new
                {
                    p.StopId,
                    StopName = network?.Stop(p.StopId)?.Name,
                    p.TripId,
                    Headsign = network?.TripHeadsign(p.TripId),
                    p.VehicleId,
                    p.RouteId,
                    p.StopSequence,
                    p.Predicted,
                    p.Low,
                    p.High,
                    p.Scheduled,
                    p.Updated,
                    p.NextTrip,
                }),
            });
        });

        api.MapGet("/routes", (LiveEvents live, IServiceProvider sp) =>
        {
            var counts = live.Vehicles().Where(v => v.RouteId is not null)
                .GroupBy(v => v.RouteId!, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
            var network = sp.GetService<ITransitNetwork>();
            var routes = network?.Routes ?? [.. counts.Keys.Order(StringComparer.Ordinal).Select(id =>
                new RouteInfo(id, id, null, 3, RoutePalette.ColorOf(id, null)) { TextColor = RoutePalette.TextOn(RoutePalette.ColorOf(id, null)) })];
            return Results.Ok(routes.Select(r => new
            {
                r.Id,
                r.ShortName,
                r.LongName,
                r.Type,
                Color = r.Color ?? RoutePalette.ColorOf(r.Id, null),
                TextColor = r.TextColor ?? RoutePalette.TextOn(r.Color ?? RoutePalette.ColorOf(r.Id, null)),
                Vehicles = counts.GetValueOrDefault(r.Id),
            }));
        });

        api.MapGet("/routes/{id}/history", (LiveEvents live, IServiceProvider sp, string id) =>
        {
            var network = sp.GetService<ITransitNetwork>();
            var routeId = network?.ResolveRoute(id) ?? id;
            var points = live.History.Of(routeId);
            if (points.Count == 0 && network is not null && network.Route(routeId) is null)
            {
                return Problems.NotFound($"unknown route '{id}'");
            }

            return Results.Ok(new { route = routeId, bucketMinutes = RouteHistory.Bucket.TotalMinutes, points });
        });

        api.MapGet("/stops/{id}/arrivals", (LiveEvents live, IServiceProvider sp, TimeProvider time, string id, int? minutes) =>
        {
            var window = minutes ?? 60;
            if (window is < 1 or > 24 * 60)
            {
                return Problems.BadRequest("minutes must be between 1 and 1440");
            }

            var network = sp.GetService<ITransitNetwork>();
            var stop = network?.Stop(id);
            var predictions = live.PredictionsAt(id);
            if (stop is null && predictions.Count == 0)
            {
                return Problems.NotFound($"unknown stop '{id}'");
            }

            // "Now" is the pipeline's clock (the newest event time) when there is one, so a replay of another day
            // shows that day's schedule; otherwise the wall clock.
            var now = live.LatestEventTime ?? time.GetUtcNow().UtcDateTime;
            // A replay shown as live runs on shifted times; the schedule is asked in recorded time and shifted back.
            var shift = sp.GetService<IReplayControl>()?.Shift ?? TimeSpan.Zero;
            var scheduled = (network?.ScheduledArrivals(id, now.AddMinutes(-2) - shift, now.AddMinutes(window) - shift, MaxArrivals) ?? [])
                .Select(s => s with { Scheduled = s.Scheduled + shift });
            var byTrip = predictions.ToDictionary(p => p.TripId, StringComparer.Ordinal);
            var rows = new List<Arrival>();
            foreach (var s in scheduled)
            {
                byTrip.Remove(s.TripId, out var p);
                if (p is null && live.HasPassed(s.TripId, s.StopSequence))
                {
                    // Its vehicle has been seen at or past this stop: the trip is gone from here, however early.
                    continue;
                }

                rows.Add(new Arrival(s.TripId, s.RouteId, network?.Route(s.RouteId)?.ShortName, s.Headsign, p?.VehicleId, s.Scheduled, p?.Predicted, p?.Low, p?.High));
            }

            foreach (var p in byTrip.Values)
            {
                // A late trip, scheduled before the window: named from the schedule all the same.
                rows.Add(new Arrival(p.TripId, p.RouteId, p.RouteId is null ? null : network?.Route(p.RouteId)?.ShortName, network?.TripHeadsign(p.TripId), p.VehicleId, p.Scheduled, p.Predicted, p.Low, p.High));
            }

            var ordered = rows.OrderBy(r => r.Predicted ?? r.Scheduled ?? DateTime.MaxValue)
                .Where(r => (r.Predicted ?? r.Scheduled) >= now.AddMinutes(-1)).Take(MaxArrivals).ToList();
            return Results.Ok(new { stop = stop ?? new StopInfo(id, null, double.NaN, double.NaN), now, arrivals = ordered });
        });

        api.MapGet("/alerts", (LiveEvents live) => Results.Ok(live.Alerts()));

        api.MapGet("/health", async (LiveEvents live, SourceRegistry sources, TimeProvider time, TrackingCluster tracking, CancellationToken ct) =>
        {
            var cluster = await tracking.InfoAsync(ct).ConfigureAwait(false);
            var m = live.Metrics;
            var all = sources.All;
            var utcNow = time.GetUtcNow().UtcDateTime;
            return Results.Ok(new
            {
                status = all.Count == 0 || all.Any(s => s.Connected || s.State == "standby") ? "ok" : "degraded",
                now = time.GetUtcNow().UtcDateTime,
                latestEventTime = live.LatestEventTime,
                lagSeconds = m.LagSeconds,
                eventsPerSecond = m.EventsPerSecond,
                vehicles = live.VehicleCount,
                predictions = live.PredictionCount,
                clients = live.ClientCount,
                cluster,
                sources = all.Select(s => new
                {
                    s.Name,
                    s.Kind,
                    State = s.State ?? (s.Connected ? "connected" : "stopped"),
                    s.Connected,
                    s.Events,
                    s.LastEventTime,
                    LagSeconds = s.LagSeconds(utcNow),
                    s.Failures,
                    s.Rejected,
                    s.LastError,
                }),
            });
        });

        api.MapGet("/network", (IServiceProvider sp) => sp.GetService<ITransitNetwork>() is { } network
            ? Results.Bytes(network.GeoJson, "application/geo+json")
            : Results.Json(new { type = "FeatureCollection", features = Array.Empty<object>() }, contentType: "application/geo+json"));

        api.MapGet("/config", (ServeOptions options, IServiceProvider sp) => Results.Ok(new
        {
            tileUrl = options.EffectiveTileUrl,
            tileAttribution = options.EffectiveTileUrl is null ? null
                : options.TileUrl is null ? ServeOptions.OpenStreetMapAttribution : "Map tiles: " + new Uri(options.EffectiveTileUrl.Replace("{s}", "a", StringComparison.Ordinal)).Host,
            hub = LiveHub.Path,
            hasNetwork = sp.GetService<ITransitNetwork>() is not null,
            replay = sp.GetService<IReplayControl>() is not null,
        }));
    }

    private sealed record Arrival(
        string TripId,
        string? RouteId,
        string? RouteShortName,
        string? Headsign,
        string? VehicleId,
        DateTime? Scheduled,
        DateTime? Predicted,
        DateTime? Low,
        DateTime? High);
}
