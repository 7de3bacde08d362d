using Fleet.Gtfs;
using Fleet.Predict;
using Fleet.Predict.Offline;
using Fleet.Predict.Online;
using Fleet.Tracking.Output;

namespace Fleet.Tracking.Replay;

/// <summary>What a TripUpdates archive replay did.</summary>
/// <param name="Snapshots">Snapshots read.</param>
/// <param name="TripsMatched">Trips the schedule knows (tracked).</param>
/// <param name="TripsSkipped">Trips it does not know (counted).</param>
/// <param name="Arrivals">Arrival events written.</param>
/// <param name="Departures">Departure events written.</param>
/// <param name="Predictions">Prediction events written.</param>
/// <param name="Rejections">Stop updates not used, by reason.</param>
public sealed record ArchiveReplayFigures(
    int Snapshots, int TripsMatched, int TripsSkipped, long Arrivals, long Departures, long Predictions, IReadOnlyDictionary<string, long> Rejections);

/// <summary>
/// Tracks a recorded day of GTFS-Realtime TripUpdates alone (no positions): the observed arrivals and departures each
/// poll reports become arrival and departure events, and at every poll of a trip the predictor (the model, or the
/// delay carried forward) predicts its downstream stops from what the polls had reported by then, with the running and
/// dwell times of the vehicles ahead. Writes the derived events in <see cref="DerivedEventOrder"/> (event time first),
/// the same JSON lines as a recording's replay; byte-identical on every run.
/// </summary>
public static class TripUpdateArchiveReplay
{
    /// <summary>Replays <paramref name="archive"/> against <paramref name="schedule"/> into <paramref name="output"/>.</summary>
    /// <param name="schedule">The static schedule.</param>
    /// <param name="archive">A folder, .zip or .tar.gz of TripUpdates snapshots.</param>
    /// <param name="predictor">Predicts at every poll; null for arrivals and departures only.</param>
    /// <param name="profile">The historical profile the predictor starts from (its model's, or empty).</param>
    /// <param name="output">Where the events go.</param>
    /// <param name="cancellationToken">Stops the replay.</param>
    /// <exception cref="InvalidDataException">A corrupt archive, or one without TripUpdates.</exception>
    public static ArchiveReplayFigures Run(
        Fleet.Gtfs.Schedule schedule, string archive, IArrivalPredictor? predictor, BoundProfile profile, ITrackingOutput output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentNullException.ThrowIfNull(archive);
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(output);
        var day = TripUpdateDays.Read(schedule, archive, new ReplayOptions { SampleIntervalSeconds = 1 }, PollWindow.All, null, cancellationToken);
        var events = new List<DerivedEvent>();
        string? VehicleOf(TripKey key) => day.Day.Actuals.Trips.TryGetValue(key, out var t) ? t.Vehicle : null;
        long arrivals = 0, departures = 0, predictions = 0;
        foreach (var e in day.Observed)
        {
            var trip = schedule.Trips[e.Trip.TripIndex];
            var stopTime = schedule.GetStopTimes(e.Trip.TripIndex)[e.StopTimeIndex];
            var scheduled = e.IsDeparture ? stopTime.Departure : stopTime.Arrival;
            events.Add(new DerivedEvent
            {
                Type = e.IsDeparture ? DerivedEventType.Departure : DerivedEventType.Arrival,
                Time = FromUnix(e.TimeUnix),
                VehicleId = VehicleOf(e.Trip),
                TripId = trip.Id,
                RouteId = schedule.Routes[trip.RouteIndex].Id,
                DirectionId = trip.DirectionId,
                ServiceDate = e.Trip.ServiceDate,
                StopId = schedule.Stops[stopTime.StopIndex].Id,
                StopSequence = stopTime.Sequence,
                Scheduled = schedule.ToUtc(e.Trip.ServiceDate, scheduled),
                DelaySeconds = e.DelaySeconds,
                Source = DetectionSource.StopEvent,
            });
            if (e.IsDeparture)
            {
                departures++;
            }
            else
            {
                arrivals++;
            }
        }

        if (predictor is not null)
        {
            var buffer = new ArrivalPrediction[80]; // DownstreamPlan.MaxStops
            day.Day.Replay.Run(day.Day.Actuals, new LiveStatistics(), _ => profile, point =>
            {
                cancellationToken.ThrowIfCancellationRequested();
                var ctx = point.Context;
                var key = point.Actual.Key;
                var trip = schedule.Trips[key.TripIndex];
                var times = schedule.GetStopTimes(key.TripIndex);
                var n = predictor.Predict(ctx, buffer);
                for (var i = 0; i < n; i++)
                {
                    var p = buffer[i];
                    var stopTime = times[p.StopTimeIndex];
                    events.Add(new DerivedEvent
                    {
                        Type = DerivedEventType.Prediction,
                        Time = FromUnix(ctx.NowUnix),
                        VehicleId = point.Actual.Vehicle,
                        TripId = trip.Id,
                        RouteId = schedule.Routes[trip.RouteIndex].Id,
                        DirectionId = trip.DirectionId,
                        ServiceDate = key.ServiceDate,
                        StopId = schedule.Stops[stopTime.StopIndex].Id,
                        StopSequence = stopTime.Sequence,
                        Scheduled = schedule.ToUtc(key.ServiceDate, stopTime.Arrival),
                        Predicted = FromUnix(p.ArrivalUnix),
                        PredictedLow = FromUnix(p.P10Unix),
                        PredictedHigh = FromUnix(p.P90Unix),
                        DelaySeconds = double.IsFinite(ctx.DelaySeconds) ? (int)Math.Round(ctx.DelaySeconds) : null,
                    });
                    predictions++;
                }
            });
        }

        events.Sort(DerivedEventOrder.Instance);
        foreach (var e in events)
        {
            output.Publish(e);
        }

        return new ArchiveReplayFigures(day.Snapshots, day.TripsMatched, day.TripsSkipped, arrivals, departures, predictions, day.Rejections);
    }

    // Whole milliseconds, as the recordings' times are: the same double always gives the same text.
    private static DateTime FromUnix(double seconds) => DateTime.UnixEpoch.AddMilliseconds(Math.Round(seconds * 1000));
}
