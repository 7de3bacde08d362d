using Fleet.Dashboard.Live;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using TransitRealtime;

namespace Fleet.Dashboard.Hosting;

/// <summary>
/// Fleet's own GTFS-Realtime VehiclePositions feed at <c>/gtfs-rt/vehicle-positions</c>, beside TripUpdates: every
/// vehicle on the map as one FeedMessage (FULL_DATASET, 2.0). Protobuf by default, <c>?format=json</c> for JSON.
/// </summary>
/// <remarks>
/// One entity per vehicle (entity id = vehicle id): position (latitude, longitude, bearing, speed), timestamp, the
/// trip when it is a GTFS trip (the one tracking has the vehicle on, or the source's own trip_id), else the route and
/// direction, and the stop it reports next when the network knows it.
/// </remarks>
public static class VehiclePositionsFeed
{
    /// <summary>Where the feed is served.</summary>
    public const string Path = "/gtfs-rt/vehicle-positions";

    private static readonly JsonFormatter s_json = new(JsonFormatter.Settings.Default);

    /// <summary>Maps the endpoint.</summary>
    public static void Map(IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet(Path, (LiveEvents live, TimeProvider time, IServiceProvider sp, string? format) =>
        {
            var feed = Build(live, sp.GetService<ITransitNetwork>(), time.GetUtcNow().UtcDateTime);
            return format switch
            {
                null or "pb" or "protobuf" => Results.Bytes(feed.ToByteArray(), TripUpdatesFeed.ProtobufContentType),
                "json" => Results.Text(s_json.Format(feed), "application/json"),
                _ => Problems.BadRequest($"format must be 'protobuf' (the default) or 'json', not '{format}'"),
            };
        });
    }

    /// <summary>The feed of the vehicles in <paramref name="live"/> at <paramref name="nowUtc"/>.</summary>
    public static FeedMessage Build(LiveEvents live, ITransitNetwork? network, DateTime nowUtc)
    {
        ArgumentNullException.ThrowIfNull(live);
        var feed = new FeedMessage
        {
            Header = new FeedHeader
            {
                GtfsRealtimeVersion = "2.0",
                Incrementality = FeedHeader.Types.Incrementality.FullDataset,
                Timestamp = TripUpdatesFeed.Posix(nowUtc),
            },
        };
        foreach (var v in live.Vehicles().OrderBy(v => v.Id, StringComparer.Ordinal))
        {
            var position = new VehiclePosition
            {
                Vehicle = new VehicleDescriptor { Id = v.Id },
                Position = new Position { Latitude = (float)v.Latitude, Longitude = (float)v.Longitude },
                // A replay tracks a line before its paced moment: never newer than the header (E012).
                Timestamp = Math.Min(TripUpdatesFeed.Posix(v.Updated), TripUpdatesFeed.Posix(nowUtc)),
            };
            if (v.Heading is { } heading)
            {
                position.Position.Bearing = (float)heading;
            }

            if (v.Speed is { } speed)
            {
                position.Position.Speed = (float)speed;
            }

            var trip = live.TrackedTripOf(v.Id) ?? (v.TripId is { } own && network is GtfsNetwork g && g.Schedule.TryGetTrip(own, out _) ? own : null);
            if (trip is not null)
            {
                position.Trip = new TripDescriptor { TripId = trip };
                if (v.RouteId is { } route && network?.Route(route) is not null)
                {
                    position.Trip.RouteId = route;
                }
            }
            else if (v.RouteId is { } route && network?.Route(route) is not null)
            {
                position.Trip = new TripDescriptor { RouteId = route };
                if (v.DirectionId is 0 or 1)
                {
                    position.Trip.DirectionId = (uint)v.DirectionId;
                }
            }

            if (v.NextStopId is { } stop && network?.Stop(stop) is not null)
            {
                position.StopId = stop;
            }

            feed.Entity.Add(new FeedEntity { Id = v.Id, Vehicle = position });
        }

        return feed;
    }
}
