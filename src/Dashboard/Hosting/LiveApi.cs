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

        api.MapGet("/health", (LiveEvents live, SourceRegistry sources, TimeProvider time) =>
        {
            var m = live.Metrics;
            var all = sources.All;
            var utcNow = time.GetUtcNow().UtcDateTime;
            return Results.Ok(new
            {
                status = all.Count == 0 || all.Any(s => s.Connected) ? "ok" : "degraded",
                now = time.GetUtcNow().UtcDateTime,
                latestEventTime = live.LatestEventTime,
                lagSeconds = m.LagSeconds,
                eventsPerSecond = m.EventsPerSecond,
                vehicles = live.VehicleCount,
                predictions = live.PredictionCount,
                clients = live.ClientCount,
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

        app.MapGet("/metrics", (LiveEvents live, SourceRegistry sources, TimeProvider time, IEnumerable<IMetricsContributor> more) =>
        {
            var text = new StringBuilder(Prometheus(live, sources, time));
            foreach (var contributor in more)
            {
                contributor.WriteMetrics(text);
            }

            return Results.Text(text.ToString(), "text/plain; version=0.0.4; charset=utf-8");
        });
    }

    /// <summary>Renders the Prometheus text exposition of the live pipeline.</summary>
    public static string Prometheus(LiveEvents live, SourceRegistry sources, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(live);
        ArgumentNullException.ThrowIfNull(sources);
        var m = live.Metrics;
        var sb = new StringBuilder();
        void Metric(string name, string type, string help, FormattableString? labels, double value)
        {
            sb.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} {type}\n");
            Sample(name, labels, value);
        }

        void Sample(string name, FormattableString? labels, double value)
        {
            sb.Append(name);
            if (labels is not null)
            {
                sb.Append('{').Append(FormattableString.Invariant(labels)).Append('}');
            }

            sb.Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        }

        Metric("fleet_events_total", "counter", "Events received from all sources.", null, m.Events);
        Metric("fleet_events_per_second", "gauge", "Events per second over the last 5 s.", null, m.EventsPerSecond);
        Metric("fleet_lag_seconds", "gauge", "Wall clock minus the event time of the newest event.", null, m.LagSeconds);
        Metric("fleet_vehicles", "gauge", "Vehicles currently tracked.", null, live.VehicleCount);
        Metric("fleet_predictions", "gauge", "Predictions currently kept.", null, live.PredictionCount);
        Metric("fleet_predictions_total", "counter", "Predictions published.", null, m.Predictions);
        Metric("fleet_predictions_unchanged_total", "counter", "Predictions that said the same as the one held, not pushed.", null, m.UnchangedPredictions);
        Metric("fleet_predictions_per_second", "gauge", "Predictions per second over the last 5 s.", null, m.PredictionsPerSecond);
        Metric("fleet_hub_clients", "gauge", "Connected hub clients.", null, live.ClientCount);
        Metric("fleet_hub_batches_total", "counter", "Batches pushed to hub clients.", null, m.Batches);
        Metric("fleet_hub_items_total", "counter", "Items pushed to hub clients.", null, m.ItemsPushed);
        Metric("fleet_hub_missed_batches_total", "counter", "Batches slow clients missed (coalesced into the next).", null, m.MissedBatches);
        Metric("fleet_hub_send_failures_total", "counter", "Pushes that failed.", null, m.SendFailures);
        var queues = live.ClientsSummary();
        Metric("fleet_hub_client_pending_items", "gauge", "Updates waiting to be pushed, all clients.", null, queues.PendingItems);
        Metric("fleet_hub_client_pending_items_max", "gauge", "Updates waiting for the client with the most.", null, queues.MaxPendingItems);
        Metric("fleet_hub_sends_in_flight", "gauge", "Pushes being written to clients (at most 2 per client).", null, queues.SendsInFlight);
        Metric("fleet_hub_clients_stalled", "gauge", "Clients with a push in flight for 1 s or more.", null, queues.Stalled);
        Metric("fleet_hub_slow_clients_disconnected_total", "counter", "Clients disconnected because a push was stuck too long.", null, m.SlowClientsDisconnected);
        Metric("fleet_vehicles_expired_total", "counter", "Vehicles removed after going quiet.", null, m.Expired);
        sb.Append("# HELP fleet_rejected_total Updates refused by a bound, by reason.\n# TYPE fleet_rejected_total counter\n");
        foreach (var reason in Enum.GetValues<RejectReason>())
        {
            Sample("fleet_rejected_total", $"reason=\"{reason}\"", m.Rejected(reason));
        }

        sb.Append("# HELP fleet_source_events_total Events per source.\n# TYPE fleet_source_events_total counter\n");
        foreach (var s in sources.All)
        {
            Sample("fleet_source_events_total", $"source=\"{Escape(s.Name)}\",kind=\"{Escape(s.Kind)}\"", s.Events);
        }

        sb.Append("# HELP fleet_source_connected 1 when the source is connected.\n# TYPE fleet_source_connected gauge\n");
        foreach (var s in sources.All)
        {
            Sample("fleet_source_connected", $"source=\"{Escape(s.Name)}\",kind=\"{Escape(s.Kind)}\"", s.Connected ? 1 : 0);
        }

        sb.Append("# HELP fleet_source_lag_seconds Wall clock minus the newest event time, per source.\n# TYPE fleet_source_lag_seconds gauge\n");
        var utcNow = (time ?? TimeProvider.System).GetUtcNow().UtcDateTime;
        foreach (var s in sources.All)
        {
            if (s.LagSeconds(utcNow) is { } lag)
            {
                Sample("fleet_source_lag_seconds", $"source=\"{Escape(s.Name)}\",kind=\"{Escape(s.Kind)}\"", lag);
            }
        }

        sb.Append("# HELP fleet_source_failures_total Failed connections or polls, per source.\n# TYPE fleet_source_failures_total counter\n");
        foreach (var s in sources.All)
        {
            Sample("fleet_source_failures_total", $"source=\"{Escape(s.Name)}\",kind=\"{Escape(s.Kind)}\"", s.Failures);
        }

        sb.Append("# HELP fleet_source_rejected_total Input messages rejected, per source and reason.\n# TYPE fleet_source_rejected_total counter\n");
        foreach (var s in sources.All)
        {
            foreach (var (reason, count) in s.Rejected)
            {
                Sample("fleet_source_rejected_total", $"source=\"{Escape(s.Name)}\",kind=\"{Escape(s.Kind)}\",reason=\"{Escape(reason)}\"", count);
            }
        }

        return sb.ToString();
    }

    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

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
