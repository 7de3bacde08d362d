namespace Fleet.Predict;

/// <summary>A predicted arrival at one downstream stop, with a range.</summary>
/// <param name="StopTimeIndex">Index into the trip's stop times.</param>
/// <param name="StopIndex">Stop index in the schedule.</param>
/// <param name="ArrivalUnix">Predicted arrival, Unix seconds.</param>
/// <param name="P10Unix">10th percentile of the arrival, Unix seconds.</param>
/// <param name="P90Unix">90th percentile of the arrival, Unix seconds.</param>
public readonly record struct ArrivalPrediction(int StopTimeIndex, int StopIndex, double ArrivalUnix, double P10Unix, double P90Unix)
{
    /// <summary>The predicted arrival as a UTC instant.</summary>
    public DateTime Arrival => PredictionContext.FromUnix(ArrivalUnix);
}

/// <summary>Predicts arrivals at the downstream stops of a vehicle's trip.</summary>
/// <remarks>Implementations are immutable and thread-safe; per-vehicle state lives in the <see cref="PredictionContext"/>.</remarks>
public interface IArrivalPredictor
{
    /// <summary>Short name used in reports (<c>schedule</c>, <c>delay</c>, <c>historical</c>, <c>kalman</c>, <c>model</c>).</summary>
    public string Name { get; }

    /// <summary>
    /// Predicts the next stops after <see cref="PredictionContext.LastStop"/>, nearest first, into
    /// <paramref name="output"/>; returns how many were written (at most the output length and the stops left).
    /// </summary>
    public int Predict(PredictionContext context, Span<ArrivalPrediction> output);
}
