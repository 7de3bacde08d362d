using System.Globalization;
using TransitRealtime;

namespace Fleet.Gtfs.Realtime;

/// <summary>How a GTFS-Realtime trip descriptor was joined to the static schedule.</summary>
public enum TripMatchKind : byte
{
    /// <summary>Not joined: unknown trip_id and no unique (route, direction, start date, start time) match.</summary>
    None = 0,
    /// <summary>Joined by trip_id.</summary>
    TripId,
    /// <summary>Joined by (route_id, direction_id, start_date, start_time).</summary>
    RouteStart,
}

/// <summary>The static trip a realtime trip descriptor refers to.</summary>
/// <param name="Kind">How it was joined; <see cref="TripMatchKind.None"/> when it was not.</param>
/// <param name="Instance">The trip on its service date (valid when <see cref="Kind"/> is not None).</param>
public readonly record struct TripMatch(TripMatchKind Kind, TripInstance Instance)
{
    /// <summary>True when the descriptor was joined.</summary>
    public bool IsMatched => Kind != TripMatchKind.None;
}

/// <summary>
/// Joins GTFS-Realtime <see cref="TripDescriptor"/>s to a <see cref="Schedule"/>: by trip_id first, then by
/// (route_id, direction_id, start_date, start_time) when the trip_id is absent or unknown.
/// </summary>
/// <remarks>Stateless apart from the schedule; thread-safe.</remarks>
public sealed class TripMatcher(Schedule schedule)
{
    /// <summary>The schedule joined against.</summary>
    public Schedule Schedule { get; } = schedule ?? throw new ArgumentNullException(nameof(schedule));

    /// <summary>
    /// Joins a descriptor. <paramref name="feedTimeUtc"/> supplies the service date when start_date is absent
    /// (the local date of the feed time in the agency zone).
    /// </summary>
    public TripMatch Match(TripDescriptor? trip, DateTime feedTimeUtc)
    {
        if (trip is null)
        {
            return default;
        }

        var date = ParseDate(trip.StartDate) ?? Schedule.LocalDate(feedTimeUtc);
        if (trip.HasTripId && Schedule.TryGetTrip(trip.TripId, out var index))
        {
            var start = Schedule.GetStartTime(index);
            var offset = 0;
            if (Schedule.Trips[index].IsFrequencyBased && ParseTime(trip.StartTime) is { } rtStart)
            {
                offset = rtStart.TotalSeconds - start.TotalSeconds;
                start = rtStart;
            }

            return new TripMatch(TripMatchKind.TripId, new TripInstance(index, date, start, offset));
        }

        if (trip.HasRouteId && ParseTime(trip.StartTime) is { } startTime)
        {
            var direction = trip.HasDirectionId ? (int)trip.DirectionId : -1;
            if (Schedule.TryFindTrip(trip.RouteId, direction, date, startTime, out var instance))
            {
                return new TripMatch(TripMatchKind.RouteStart, instance);
            }
        }

        return default;
    }

    /// <summary>Parses a GTFS-RT start_date (YYYYMMDD); null when absent or malformed.</summary>
    public static DateOnly? ParseDate(string? text) =>
        !string.IsNullOrEmpty(text) && DateOnly.TryParseExact(text, "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d) ? d : null;

    /// <summary>Parses a GTFS-RT start_time (HH:MM:SS, may exceed 24 h); null when absent or malformed.</summary>
    public static ServiceTime? ParseTime(string? text) =>
        !string.IsNullOrEmpty(text) && ServiceTime.TryParse(text, out var t) ? t : null;
}
