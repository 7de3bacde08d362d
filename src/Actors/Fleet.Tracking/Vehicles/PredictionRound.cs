using Fleet.Ingest.Events;
using Fleet.Tracking.Output;
using Fleet.Tracking.Schedule;

namespace Fleet.Tracking.Vehicles;

/// <summary>
/// One prediction round as events: what a tracked vehicle (<see cref="VehicleTracker"/>) and a trip tracked from
/// TripUpdates' stop events (<see cref="Network.TripBoard"/>) both publish from their predictor's answers.
/// </summary>
internal static class PredictionRound
{
    /// <summary>Orders a predictor's answers: the current trip's stops, then the block's next trip's, each by stop.</summary>
    public static void Order(List<StopPrediction> predictions) =>
        predictions.Sort(static (a, b) => (a.Trip is null ? 0 : 1).CompareTo(b.Trip is null ? 0 : 1) is var c && c != 0
            ? c
            : a.StopIndex.CompareTo(b.StopIndex));

    /// <summary>
    /// Publishes the predictions made at <paramref name="t"/>, in order, with times made non-decreasing along the trip
    /// (and on into the block's next trip) and never earlier than <paramref name="t"/>: a vehicle reaches its stops in
    /// order, and not before now, whatever a per-stop model says. The round's marker is the caller's.
    /// </summary>
    /// <param name="predictions">The answers, ordered (<see cref="Order"/>).</param>
    /// <param name="plan">The trip the stop indexes refer to (a prediction naming its own trip uses that one).</param>
    /// <param name="t">When the round is made.</param>
    /// <param name="vehicleId">The vehicle the round is of.</param>
    /// <param name="mode">The vehicle's mode; null for each stop's trip's.</param>
    /// <param name="ingestTimestamp">The ingest stamp the events carry (latency measurement), 0 when none.</param>
    /// <param name="output">Where the events go.</param>
    public static void Publish(List<StopPrediction> predictions, TripPlan plan, DateTime t, string vehicleId, TransportMode? mode, long ingestTimestamp,
        ITrackingOutput output)
    {
        var floor = t;
        foreach (var p in predictions)
        {
            var trip = p.Trip ?? plan; // the block's next trip carries its own plan
            var stop = trip.Stops[p.StopIndex];
            var arrival = p.Arrival < floor ? floor : p.Arrival;
            floor = arrival;
            output.Publish(new DerivedEvent
            {
                Type = DerivedEventType.Prediction,
                Time = t,
                VehicleId = vehicleId,
                TripId = trip.TripId,
                RouteId = trip.RouteId,
                DirectionId = trip.DirectionId,
                ServiceDate = trip.ServiceDate,
                StopId = stop.StopId,
                StopSequence = stop.Sequence,
                Scheduled = stop.Arrival,
                Predicted = arrival,
                PredictedLow = p.Low is { } low && low > arrival ? arrival : p.Low,
                PredictedHigh = p.High is { } high && high < arrival ? arrival : p.High,
                DelaySeconds = (int)Math.Round((arrival - stop.Arrival).TotalSeconds),
                Mode = mode ?? trip.Mode,
                IngestTimestamp = ingestTimestamp,
                NextTrip = p.Trip is not null,
            });
        }
    }
}
