using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.AspNetCore.SignalR;
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

/// <summary>
/// What the server pushes to a connected client: the hub's typed client (<c>Hub&lt;ILiveClient&gt;</c>). Each method
/// goes out under its <see cref="LiveMethods"/> name, the documented protocol, whatever the C# name.
/// </summary>
public interface ILiveClient
{
    /// <summary>Sends changed vehicles.</summary>
    /// <param name="vehicles">The vehicles in their latest state.</param>
    /// <returns>Completes when the message was accepted.</returns>
    [HubMethodName(LiveMethods.Vehicles)]
    public Task Vehicles(IReadOnlyList<VehicleState> vehicles);

    /// <summary>Sends the ids of vehicles that are gone.</summary>
    /// <param name="vehicleIds">Their ids.</param>
    /// <returns>Completes when the message was accepted.</returns>
    [HubMethodName(LiveMethods.Removed)]
    public Task Removed(IReadOnlyList<string> vehicleIds);

    /// <summary>Sends changed predictions.</summary>
    /// <param name="predictions">The predictions.</param>
    /// <returns>Completes when the message was accepted.</returns>
    [HubMethodName(LiveMethods.Predictions)]
    public Task Predictions(IReadOnlyList<ArrivalPrediction> predictions);

    /// <summary>Sends predictions taken back.</summary>
    /// <param name="withdrawals">The withdrawals.</param>
    /// <returns>Completes when the message was accepted.</returns>
    [HubMethodName(LiveMethods.Withdrawn)]
    public Task Withdrawn(IReadOnlyList<PredictionWithdrawal> withdrawals);

    /// <summary>Sends new or changed alerts.</summary>
    /// <param name="alerts">The alerts.</param>
    /// <returns>Completes when the message was accepted.</returns>
    [HubMethodName(LiveMethods.Alerts)]
    public Task Alerts(IReadOnlyList<LiveAlert> alerts);
}
