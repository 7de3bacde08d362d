using Fleet.Dashboard.Live;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using TransitRealtime;

namespace Fleet.Dashboard.Hosting;

/// <summary>
/// Fleet's own GTFS-Realtime TripUpdates feed at <c>/gtfs-rt/trip-updates</c>: the live predictions as one
/// FeedMessage (FULL_DATASET, gtfs_realtime_version 2.0), so that OpenTripPlanner, OneBusAway and other GTFS-RT
/// consumers can use Fleet. Protobuf by default; <c>?format=json</c> gives the protobuf-JSON form.
/// </summary>
/// <remarks>
/// One TripUpdate per trip with a live prediction (entity id = trip_id), carrying the trip (trip_id, route_id), the
/// vehicle when known, and one StopTimeUpdate per predicted stop in stop_sequence order: arrival time, delay against
/// the schedule when the schedule is known, and uncertainty = the width of the p10-p90 range in seconds when the
/// predictor gives a range.
/// </remarks>
public static class TripUpdatesFeed
{
    /// <summary>Where the feed is served.</summary>
    public const string Path = "/gtfs-rt/trip-updates";

    /// <summary>Content type of the protobuf form.</summary>
    public const string ProtobufContentType = "application/x-protobuf";

    private static readonly JsonFormatter s_json = new(JsonFormatter.Settings.Default);

    /// <summary>Maps the endpoint.</summary>
    public static void Map(IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet(Path, (LiveEvents live, TimeProvider time, string? format) =>
        {
            var feed = Build(live.AllPredictions(), time.GetUtcNow().UtcDateTime);
            return format switch
            {
                null or "pb" or "protobuf" => Results.Bytes(feed.ToByteArray(), ProtobufContentType),
                "json" => Results.Text(s_json.Format(feed), "application/json"),
                _ => Problems.BadRequest($"format must be 'protobuf' (the default) or 'json', not '{format}'"),
            };
        });
    }

    /// <summary>The feed for a set of predictions at <paramref name="nowUtc"/>.</summary>
    public static FeedMessage Build(IReadOnlyList<ArrivalPrediction> predictions, DateTime nowUtc)
    {
        ArgumentNullException.ThrowIfNull(predictions);
        var feed = new FeedMessage
        {
            Header = new FeedHeader
            {
                GtfsRealtimeVersion = "2.0",
                Incrementality = FeedHeader.Types.Incrementality.FullDataset,
                Timestamp = Posix(nowUtc),
            },
        };
        foreach (var trip in predictions.GroupBy(p => p.TripId, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var first = trip.First();
            var update = new TripUpdate
            {
                Trip = new TripDescriptor { TripId = trip.Key },
                // A replay tracks a line before its paced moment, so a round can be a moment ahead of the clock: the
                // update's timestamp never passes the header's (E012).
                Timestamp = Math.Min(Posix(trip.Max(p => p.Updated)), Posix(nowUtc)),
            };
            if (trip.Select(p => p.RouteId).FirstOrDefault(r => r is not null) is { } route)
            {
                update.Trip.RouteId = route;
            }

            if (trip.Select(p => p.VehicleId).FirstOrDefault(v => v is not null) is { } vehicle)
            {
                update.Vehicle = new VehicleDescriptor { Id = vehicle };
            }

            // GTFS-RT wants stop_time_updates sorted by stop_sequence; unknown sequences (-1) keep time order last.
            foreach (var p in trip.OrderBy(p => p.StopSequence < 0 ? int.MaxValue : p.StopSequence).ThenBy(p => p.Predicted))
            {
                var arrival = new TripUpdate.Types.StopTimeEvent { Time = (long)Posix(p.Predicted) };
                if (p.Scheduled is { } scheduled)
                {
                    arrival.Delay = (int)Math.Round((p.Predicted - scheduled).TotalSeconds);
                }

                var range = (p.High - p.Low).TotalSeconds;
                if (range >= 1)
                {
                    arrival.Uncertainty = (int)Math.Round(range);
                }

                var stu = new TripUpdate.Types.StopTimeUpdate { StopId = p.StopId, Arrival = arrival };
                if (p.StopSequence >= 0)
                {
                    stu.StopSequence = (uint)p.StopSequence;
                }

                update.StopTimeUpdate.Add(stu);
            }

            feed.Entity.Add(new FeedEntity { Id = first.TripId, TripUpdate = update });
        }

        return feed;
    }

    /// <summary>POSIX seconds of a UTC time, as GTFS-RT timestamps are (0 before 1970).</summary>
    internal static ulong Posix(DateTime utc) =>
        (ulong)Math.Max(0, (long)Math.Floor((DateTime.SpecifyKind(utc, DateTimeKind.Utc) - DateTime.UnixEpoch).TotalSeconds));
}
