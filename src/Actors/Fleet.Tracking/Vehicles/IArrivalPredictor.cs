using Fleet.Tracking.Output;
using Fleet.Tracking.Schedule;

namespace Fleet.Tracking.Vehicles;

/// <summary>What a vehicle knows about its progress when it asks for predictions.</summary>
/// <param name="VehicleId">The vehicle.</param>
/// <param name="Plan">The trip it is on.</param>
/// <param name="Time">Event time of the observation.</param>
/// <param name="AlongMetres">Distance along the trip's path.</param>
/// <param name="NextStopIndex">Index in <see cref="TripPlan.Stops"/> of the first stop not yet departed.</param>
/// <param name="DelaySeconds">Current delay, positive when late.</param>
/// <param name="SpeedMetresPerSecond">Speed, NaN when unknown.</param>
public readonly record struct VehicleProgress(
    string VehicleId, TripPlan Plan, DateTime Time, double AlongMetres, int NextStopIndex, int DelaySeconds, double SpeedMetresPerSecond)
{
    /// <summary>Detected arrival per stop of <see cref="Plan"/> (UTC ticks, 0 when not yet); empty when not tracked.</summary>
    public ReadOnlyMemory<long> Arrivals { get; init; }

    /// <summary>Detected departure per stop of <see cref="Plan"/> (UTC ticks, 0 when not yet); empty when not tracked.</summary>
    public ReadOnlyMemory<long> Departures { get; init; }

    /// <summary>True when <see cref="AlongMetres"/> comes from a matched position (false: unknown, reported as 0).</summary>
    public bool HasPosition { get; init; }
}

/// <summary>A predicted arrival at one downstream stop, with an optional range.</summary>
/// <param name="StopIndex">Index in <see cref="TripPlan.Stops"/> of the vehicle's trip, or of <see cref="Trip"/> when set.</param>
/// <param name="Arrival">Predicted arrival, UTC.</param>
/// <param name="Low">Lower end of the range (10th percentile), UTC; null when the predictor gives no range.</param>
/// <param name="High">Upper end of the range (90th percentile), UTC; null when the predictor gives no range.</param>
public readonly record struct StopPrediction(int StopIndex, DateTime Arrival, DateTime? Low = null, DateTime? High = null)
{
    /// <summary>The trip of the stop when it is not the vehicle's current one (its block's next trip); null otherwise.</summary>
    public TripPlan? Trip { get; init; }
}

/// <summary>
/// Implemented by predictors that learn from what vehicles do (segment running times, dwells, headways): the
/// tracking engine hands them every arrival and departure it publishes, in its deterministic output order.
/// </summary>
/// <remarks>Called from one thread at a time (the engine's publishing step), between prediction rounds.</remarks>
public interface IStopObserver
{
    /// <summary>Observes a published derived event (arrivals, departures and trip ends matter; others are ignored).</summary>
    public void Observe(DerivedEvent derived);
}

/// <summary>
/// The seam through which a vehicle asks for arrival predictions at its downstream stops (Fleet.Predict plugs a
/// model in here; <see cref="DelayCarriedForwardPredictor"/> is the built-in baseline).
/// </summary>
/// <remarks>Called from every shard concurrently: implementations are thread-safe and should not block.</remarks>
public interface IArrivalPredictor
{
    /// <summary>Appends predictions for the stops downstream of <paramref name="progress"/> to <paramref name="into"/>.</summary>
    public void Predict(in VehicleProgress progress, List<StopPrediction> into);
}

/// <summary>The schedule shifted by the current delay (the simplest baseline: delay carried forward).</summary>
public sealed class DelayCarriedForwardPredictor : IArrivalPredictor
{
    /// <inheritdoc />
    public void Predict(in VehicleProgress progress, List<StopPrediction> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        var stops = progress.Plan.Stops;
        for (var i = progress.NextStopIndex; i < stops.Count; i++)
        {
            var at = stops[i].Arrival.AddSeconds(progress.DelaySeconds);
            into.Add(new StopPrediction(i, at < progress.Time ? progress.Time : at));
        }
    }
}
