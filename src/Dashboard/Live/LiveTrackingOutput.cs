using Fleet.Tracking.Output;

namespace Fleet.Dashboard.Live;

/// <summary>
/// The seam between tracking and the live fan-out: turns tracking's <see cref="DerivedEvent"/>s into predictions
/// and alerts on <see cref="LiveEvents"/>, and keeps the predictions true: a round replaces the vehicle's previous
/// one whole, an arrival withdraws the stop and those before it, a trip's end withdraws its predictions, and a stale
/// vehicle loses all of its.
/// </summary>
/// <remarks>
/// Tracking works in event time; a replay that looks live shifts times, so <paramref name="shift"/> (read for each
/// event) is added to every time published. Called from the tracking engine's publishing thread; LiveEvents is
/// thread-safe, so this adapter is too. Events arrive either in each vehicle's own order (the actor runtime) or in
/// <see cref="DerivedEventOrder"/> (the batch engine); both put a round's predictions before its
/// <see cref="DerivedEventType.PredictionRound"/>, and the withdrawals below hold in either order.
/// </remarks>
public sealed class LiveTrackingOutput(LiveEvents live, Func<TimeSpan>? shift = null) : ITrackingOutput
{
    // A round's predictions per vehicle, until its PredictionRound marker (which always follows them) publishes the
    // round whole. Locked: the engine publishes from one thread at a time, but nothing here relies on it.
    private readonly Dictionary<string, List<ArrivalPrediction>> _pending = new(StringComparer.Ordinal);

    /// <summary>
    /// Publishes predictions with their p10-p90 range (a predictor without one, the delay carried forward, gives
    /// low = high = the prediction), withdraws what arrivals, trip ends, stale vehicles and newer rounds retire, and
    /// forwards alerts.
    /// </summary>
    public void Publish(DerivedEvent derived)
    {
        ArgumentNullException.ThrowIfNull(derived);
        var by = shift?.Invoke() ?? TimeSpan.Zero;
        switch (derived.Type)
        {
            case DerivedEventType.Prediction when derived is { StopId: { } stop, TripId: { } trip, Predicted: { } predicted }:
                var at = predicted + by;
                var low = (derived.PredictedLow ?? predicted) + by;
                var high = (derived.PredictedHigh ?? predicted) + by;
                var prediction = new ArrivalPrediction(
                    stop, trip, derived.VehicleId, derived.RouteId, derived.StopSequence, at, low, high, derived.Scheduled + by, derived.Time + by)
                {
                    NextTrip = derived.NextTrip,
                };
                if (derived.VehicleId is { } owner)
                {
                    // Held until the round's end, then published whole.
                    lock (_pending)
                    {
                        if (!_pending.TryGetValue(owner, out var round))
                        {
                            _pending[owner] = round = [];
                        }

                        round.Add(prediction);
                    }
                }
                else
                {
                    live.PublishPrediction(prediction);
                }

                break;
            case DerivedEventType.PredictionRound when derived.VehicleId is { } vehicle:
                List<ArrivalPrediction>? made;
                lock (_pending)
                {
                    _pending.Remove(vehicle, out made);
                }

                live.PublishRound(vehicle, derived.TripId, derived.Time + by, made ?? []);
                break;
            case DerivedEventType.Arrival when derived is { StopId: { } stop, TripId: { } trip }:
                live.WithdrawPassed(derived.VehicleId, trip, stop, derived.StopSequence, derived.Time + by);
                if (derived.RouteId is { } route)
                {
                    live.History.OnArrival(route, stop, derived.Time + by, derived.DelaySeconds, derived.ScheduledHeadwaySeconds);
                }

                break;
            case DerivedEventType.TripEnded when derived is { VehicleId: { } vehicle, TripId: { } trip }:
                // Completing a trip keeps the block's next trip (the vehicle is about to serve it); anything else
                // (journey change, dead run, sign-off) leaves the block, and every older prediction goes.
                live.WithdrawTrip(vehicle, trip, derived.Time + by, leftBlock: derived.Other != "completed");
                break;
            case DerivedEventType.Alert when derived is { Kind: AlertKind.Stale, Cleared: false, VehicleId: { } vehicle }:
                live.WithdrawVehicle(vehicle, WithdrawReason.Stale, derived.Time + by);
                live.PublishAlert(ToAlert(derived, by));
                break;
            case DerivedEventType.Alert:
                live.PublishAlert(ToAlert(derived, by));
                break;
            default:
                break;
        }
    }

    /// <summary>The live alert for a tracking alert; its id is stable per kind and subject, so clearing replaces it.</summary>
    public static LiveAlert ToAlert(DerivedEvent derived, TimeSpan shift = default)
    {
        ArgumentNullException.ThrowIfNull(derived);
        var subject = derived.VehicleId ?? derived.TripId ?? derived.StopId ?? "network";
        var severity = derived.Kind switch
        {
            AlertKind.SevereDelay or AlertKind.TripCancelled => AlertSeverity.Severe,
            AlertKind.None => AlertSeverity.Info,
            _ => AlertSeverity.Warning,
        };
        var who = derived.VehicleId is { } v ? $"vehicle {v}" : derived.TripId is { } t ? $"trip {t}" : "network";
        var route = derived.RouteId is { } r ? $" (route {r})" : string.Empty;
        var text = derived.Kind switch
        {
            AlertKind.OffRoute => $"{who}{route} is off route" + (derived.Value is { } m ? $" by {m:F0} m" : string.Empty),
            AlertKind.Stale => $"{who}{route} has gone quiet",
            AlertKind.Bunching => $"{who}{route} is bunching with {derived.Other ?? "the vehicle ahead"}"
                + (derived.Value is { } h ? $" ({h:F0} s headway)" : string.Empty),
            AlertKind.SevereDelay => $"{who}{route} is {(derived.DelaySeconds ?? 0) / 60} min late",
            AlertKind.TripCancelled => $"{who}{route} is cancelled",
            AlertKind.StopSkipped => $"{who}{route} skips stop {derived.StopId}",
            _ => $"{who}{route}: {derived.Kind}",
        };
        return new LiveAlert(
            $"{derived.Kind}:{subject}", severity, derived.Cleared ? text + " (cleared)" : text,
            derived.RouteId, derived.StopId, derived.VehicleId, derived.Time + shift, derived.Cleared);
    }
}
