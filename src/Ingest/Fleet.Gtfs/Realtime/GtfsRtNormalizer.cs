using Fleet.Ingest.Events;
using TransitRealtime;

namespace Fleet.Gtfs.Realtime;

/// <summary>
/// Turns a decoded FeedMessage into Fleet's normalized <see cref="VehicleEvent"/>s: each VehiclePosition becomes
/// one <see cref="EventType.Vp"/> event, and each stop_time_update of a TripUpdate one
/// <see cref="EventType.TripUpdateStop"/> event with predicted arrival/departure and delay.
/// </summary>
/// <remarks>
/// <para>With a <see cref="TripMatcher"/>, trips are joined to the schedule: route, direction, start time and
/// mode come from the static trip, scheduled arrival/departure are filled in, an absent predicted time is
/// derived from schedule + delay, and an absent delay from predicted − scheduled. Without one, only what the
/// feed says is used.</para>
/// <para>Alerts produce no events. Entities flagged is_deleted are skipped. Stateless; thread-safe.</para>
/// </remarks>
public static class GtfsRtNormalizer
{
    /// <summary>Appends the events of <paramref name="feed"/> to <paramref name="output"/> and returns how many were added.</summary>
    /// <param name="feed">A decoded feed.</param>
    /// <param name="receiveTimeUtc">When the snapshot was received (recording line time or poll time).</param>
    /// <param name="matcher">Joins trips to the static schedule; null to use the feed alone.</param>
    /// <param name="output">Receives the events.</param>
    public static int Normalize(FeedMessage feed, DateTime receiveTimeUtc, TripMatcher? matcher, ICollection<VehicleEvent> output)
    {
        ArgumentNullException.ThrowIfNull(feed);
        ArgumentNullException.ThrowIfNull(output);
        var before = output.Count;
        var headerTime = feed.Header is { HasTimestamp: true } h ? FromPosix(h.Timestamp) : receiveTimeUtc;
        foreach (var entity in feed.Entity)
        {
            if (entity.IsDeleted)
            {
                continue;
            }

            if (entity.Vehicle is { } vp)
            {
                output.Add(FromVehicle(entity, vp, headerTime, receiveTimeUtc, matcher));
            }

            if (entity.TripUpdate is { } tu)
            {
                AddTripUpdate(entity, tu, headerTime, receiveTimeUtc, matcher, output);
            }
        }

        return output.Count - before;
    }

    /// <summary>Converts POSIX seconds to a UTC <see cref="DateTime"/>.</summary>
    public static DateTime FromPosix(ulong seconds) => DateTime.UnixEpoch.AddSeconds(seconds);

    /// <summary>Converts POSIX seconds to a UTC <see cref="DateTime"/>.</summary>
    public static DateTime FromPosix(long seconds) => DateTime.UnixEpoch.AddSeconds(seconds);

    private static VehicleEvent FromVehicle(FeedEntity entity, VehiclePosition vp, DateTime headerTime, DateTime receiveTime, TripMatcher? matcher)
    {
        var e = VehicleEvent.Empty;
        e.Source = EventSource.GtfsRt;
        e.Type = EventType.Vp;
        e.VehicleId = VehicleIdOf(vp.Vehicle, entity);
        e.EventTime = vp.HasTimestamp ? FromPosix(vp.Timestamp) : headerTime;
        e.ReceiveTime = receiveTime;
        if (vp.Position is { } p)
        {
            e.Latitude = p.Latitude;
            e.Longitude = p.Longitude;
            e.Location = LocationSource.Gps;
            if (p.HasSpeed)
            {
                e.Speed = p.Speed;
            }

            if (p.HasBearing)
            {
                e.Heading = p.Bearing;
            }

            if (p.HasOdometer)
            {
                e.Odometer = p.Odometer;
            }
        }

        if (vp.HasOccupancyPercentage)
        {
            e.Occupancy = (int)Math.Min(vp.OccupancyPercentage, int.MaxValue);
        }

        if (vp.HasStopId)
        {
            e.StopId = vp.StopId;
        }

        if (vp.HasCurrentStopSequence)
        {
            e.StopSequence = (int)Math.Min(vp.CurrentStopSequence, int.MaxValue);
        }

        var match = ApplyTrip(ref e, vp.Trip, e.EventTime, matcher);
        if (match.IsMatched && e.StopId is null && e.StopSequence >= 0)
        {
            var i = matcher!.Schedule.FindStopSequence(match.Instance.TripIndex, e.StopSequence);
            if (i >= 0)
            {
                e.StopId = matcher.Schedule.Stops[matcher.Schedule.GetStopTimes(match.Instance.TripIndex)[i].StopIndex].Id;
            }
        }

        return e;
    }

    private static void AddTripUpdate(FeedEntity entity, TripUpdate tu, DateTime headerTime, DateTime receiveTime, TripMatcher? matcher, ICollection<VehicleEvent> output)
    {
        var template = VehicleEvent.Empty;
        template.Source = EventSource.GtfsRt;
        template.Type = EventType.TripUpdateStop;
        template.VehicleId = VehicleIdOf(tu.Vehicle, entity);
        template.EventTime = tu.HasTimestamp ? FromPosix(tu.Timestamp) : headerTime;
        template.ReceiveTime = receiveTime;
        var match = ApplyTrip(ref template, tu.Trip, template.EventTime, matcher);
        var schedule = matcher?.Schedule;
        var stopTimes = match.IsMatched ? schedule!.GetStopTimes(match.Instance.TripIndex) : [];
        var searchFrom = 0;

        foreach (var stu in tu.StopTimeUpdate)
        {
            var e = template;
            if (stu.HasStopId)
            {
                e.StopId = stu.StopId;
            }

            if (stu.HasStopSequence)
            {
                e.StopSequence = (int)Math.Min(stu.StopSequence, int.MaxValue);
            }

            // The static stop time: by stop_sequence, else the next stop with this stop_id (trips can revisit a stop).
            var st = -1;
            if (match.IsMatched)
            {
                if (e.StopSequence >= 0)
                {
                    st = schedule!.FindStopSequence(match.Instance.TripIndex, e.StopSequence);
                }
                else if (e.StopId is not null)
                {
                    for (var i = searchFrom; i < stopTimes.Length; i++)
                    {
                        if (string.Equals(schedule!.Stops[stopTimes[i].StopIndex].Id, e.StopId, StringComparison.Ordinal))
                        {
                            st = i;
                            break;
                        }
                    }
                }
            }

            if (st >= 0)
            {
                searchFrom = st + 1;
                var s = stopTimes[st];
                e.StopId ??= schedule!.Stops[s.StopIndex].Id;
                if (e.StopSequence < 0)
                {
                    e.StopSequence = s.Sequence;
                }

                var date = match.Instance.ServiceDate;
                e.ScheduledArrival = schedule!.ToUtc(date, s.Arrival.AddSeconds(match.Instance.OffsetSeconds));
                e.ScheduledDeparture = schedule.ToUtc(date, s.Departure.AddSeconds(match.Instance.OffsetSeconds));
            }

            var relationship = stu.HasScheduleRelationship ? stu.ScheduleRelationship : TripUpdate.Types.StopTimeUpdate.Types.ScheduleRelationship.Scheduled;
            if (relationship == TripUpdate.Types.StopTimeUpdate.Types.ScheduleRelationship.Scheduled)
            {
                e.PredictedArrival = Predicted(stu.Arrival, e.ScheduledArrival);
                e.PredictedDeparture = Predicted(stu.Departure, e.ScheduledDeparture);
                e.DelaySeconds = DelayOf(stu.Arrival, e.PredictedArrival, e.ScheduledArrival)
                                 ?? DelayOf(stu.Departure, e.PredictedDeparture, e.ScheduledDeparture)
                                 ?? (tu.HasDelay ? tu.Delay : null);
            }

            output.Add(e);
        }
    }

    private static DateTime? Predicted(TripUpdate.Types.StopTimeEvent? ev, DateTime? scheduled)
    {
        if (ev is null)
        {
            return null;
        }

        if (ev.HasTime)
        {
            return FromPosix(ev.Time);
        }

        return ev.HasDelay && scheduled is { } s ? s.AddSeconds(ev.Delay) : null;
    }

    private static int? DelayOf(TripUpdate.Types.StopTimeEvent? ev, DateTime? predicted, DateTime? scheduled)
    {
        if (ev is null)
        {
            return null;
        }

        if (ev.HasDelay)
        {
            return ev.Delay;
        }

        return predicted is { } p && scheduled is { } s ? (int)Math.Round((p - s).TotalSeconds) : null;
    }

    private static TripMatch ApplyTrip(ref VehicleEvent e, TripDescriptor? trip, DateTime eventTime, TripMatcher? matcher)
    {
        if (trip is null)
        {
            return default;
        }

        e.TripId = trip.HasTripId ? trip.TripId : null;
        e.RouteId = trip.HasRouteId ? trip.RouteId : null;
        e.DirectionId = trip.HasDirectionId && trip.DirectionId <= 1 ? (sbyte)trip.DirectionId : (sbyte)-1;
        e.OperatingDay = TripMatcher.ParseDate(trip.StartDate);
        if (TripMatcher.ParseTime(trip.StartTime) is { } start)
        {
            e.StartTimeSeconds = start.TotalSeconds;
        }

        var match = matcher?.Match(trip, eventTime) ?? default;
        if (!match.IsMatched)
        {
            return match;
        }

        var schedule = matcher!.Schedule;
        var staticTrip = schedule.Trips[match.Instance.TripIndex];
        var route = schedule.Routes[staticTrip.RouteIndex];
        e.TripId = staticTrip.Id;
        e.RouteId = route.Id;
        if (staticTrip.DirectionId >= 0)
        {
            e.DirectionId = staticTrip.DirectionId;
        }

        e.OperatingDay = match.Instance.ServiceDate;
        e.StartTimeSeconds = match.Instance.StartTime.TotalSeconds;
        e.Mode = ModeOf(route.RouteType);
        return match;
    }

    /// <summary>Maps a GTFS route_type (basic or extended) to a <see cref="TransportMode"/>.</summary>
    public static TransportMode ModeOf(int routeType) => routeType switch
    {
        0 or (>= 900 and < 1000) => TransportMode.Tram,
        1 or (>= 400 and < 500) => TransportMode.Metro,
        2 or (>= 100 and < 200) => TransportMode.Train,
        3 or 11 or (>= 200 and < 300) or (>= 700 and < 800) => TransportMode.Bus,
        4 or (>= 1000 and < 1100) or 1200 => TransportMode.Ferry,
        _ => TransportMode.Unknown,
    };

    private static string VehicleIdOf(VehicleDescriptor? vehicle, FeedEntity entity) =>
        vehicle is { HasId: true } ? vehicle.Id :
        vehicle is { HasLabel: true } ? vehicle.Label :
        entity.Id;
}
