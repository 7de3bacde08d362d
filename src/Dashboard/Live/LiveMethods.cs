using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Live;

/// <summary>Key of a prediction: one trip at one stop.</summary>
/// <param name="StopId">Stop id.</param>
/// <param name="TripId">Trip id.</param>
public readonly record struct PredictionKey(string StopId, string TripId);

/// <summary>Names of the server-to-client hub methods.</summary>
public static class LiveMethods
{
    /// <summary>A batch of changed <see cref="VehicleState"/>s.</summary>
    public const string Vehicles = "vehicles";

    /// <summary>A batch of vehicle ids that are gone.</summary>
    public const string Removed = "removed";

    /// <summary>A batch of changed <see cref="ArrivalPrediction"/>s.</summary>
    public const string Predictions = "predictions";

    /// <summary>A batch of <see cref="PredictionWithdrawal"/>s: predictions taken back (drop the row).</summary>
    public const string Withdrawn = "withdrawn";

    /// <summary>A batch of new or changed <see cref="LiveAlert"/>s.</summary>
    public const string Alerts = "alerts";
}
