using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Live;

/// <summary>The send queue of one client.</summary>
/// <param name="PendingItems">Updates waiting for the client (coalesced keys; at most <see cref="LiveOptions.MaxPendingPerClient"/>).</param>
/// <param name="SendsInFlight">Pushes being written to it (at most 2: one vehicle batch, one prediction push).</param>
/// <param name="OldestSendInFlight">How long the oldest of those has been being written.</param>
/// <param name="MissedBatches">Pushes it missed because it was still writing the previous one.</param>
public readonly record struct LiveClientStats(int PendingItems, int SendsInFlight, TimeSpan OldestSendInFlight, long MissedBatches);

/// <summary>The send queues of all clients.</summary>
/// <param name="PendingItems">Updates waiting, all clients.</param>
/// <param name="MaxPendingItems">Updates waiting for the client with the most.</param>
/// <param name="SendsInFlight">Pushes being written, all clients.</param>
/// <param name="Stalled">Clients with a push in flight for a second or more.</param>
public readonly record struct LiveClientsSummary(long PendingItems, int MaxPendingItems, int SendsInFlight, int Stalled);

/// <summary>Which clients may want a change: by stop, route and vehicle id, the box subscribers, every subscribed
/// client (global alerts). Immutable; rebuilt when a subscription changes. Each candidate is checked with its own
/// filter under its lock before anything is queued, so a stale index never sends what a client did not ask for.</summary>
internal sealed class SubscriptionIndex(
    Dictionary<string, LiveConnection[]> stops,
    Dictionary<string, LiveConnection[]> routes,
    Dictionary<string, LiveConnection[]> vehicles,
    LiveConnection[] boxes,
    LiveConnection[] all)
{
    public static readonly SubscriptionIndex Empty = new([], [], [], [], []);

    public void ForVehicle(VehicleState v, Action<LiveConnection> queue)
    {
        if (vehicles.TryGetValue(v.Id, out var byVehicle))
        {
            Visit(byVehicle, v, queue);
        }

        if (v.RouteId is not null && routes.TryGetValue(v.RouteId, out var byRoute))
        {
            Visit(byRoute, v, queue);
        }

        Visit(boxes, v, queue);
    }

    /// <summary>True when a client follows the prediction's stop, route or vehicle.</summary>
    public bool WantsPrediction(ArrivalPrediction p) =>
        stops.ContainsKey(p.StopId) || (p.RouteId is not null && routes.ContainsKey(p.RouteId)) ||
        (p.VehicleId is not null && vehicles.ContainsKey(p.VehicleId));

    /// <summary>Queues for the clients that follow a prediction's (or a withdrawal's) stop, route or vehicle.</summary>
    public void ForPrediction(string stopId, string? routeId, string? vehicleId, Action<LiveConnection> queue)
    {
        if (stops.TryGetValue(stopId, out var byStop))
        {
            Visit(byStop, stopId, routeId, vehicleId, queue);
        }

        if (routeId is not null && routes.TryGetValue(routeId, out var byRoute))
        {
            Visit(byRoute, stopId, routeId, vehicleId, queue);
        }

        if (vehicleId is not null && vehicles.TryGetValue(vehicleId, out var byVehicle))
        {
            Visit(byVehicle, stopId, routeId, vehicleId, queue);
        }
    }

    public void ForAlert(LiveAlert a, Action<LiveConnection> queue)
    {
        if (a.IsGlobal)
        {
            foreach (var client in all)
            {
                lock (client.Gate)
                {
                    if (client.Subscriptions.Count > 0)
                    {
                        queue(client);
                    }
                }
            }

            return;
        }

        if (a.StopId is not null && stops.TryGetValue(a.StopId, out var byStop))
        {
            Visit(byStop, a, queue);
        }

        if (a.RouteId is not null && routes.TryGetValue(a.RouteId, out var byRoute))
        {
            Visit(byRoute, a, queue);
        }

        if (a.VehicleId is not null && vehicles.TryGetValue(a.VehicleId, out var byVehicle))
        {
            Visit(byVehicle, a, queue);
        }
    }

    private static void Visit(LiveConnection[] clients, VehicleState v, Action<LiveConnection> queue)
    {
        foreach (var client in clients)
        {
            lock (client.Gate)
            {
                if (client.Matches(v))
                {
                    queue(client);
                }
            }
        }
    }

    private static void Visit(LiveConnection[] clients, string stopId, string? routeId, string? vehicleId, Action<LiveConnection> queue)
    {
        foreach (var client in clients)
        {
            lock (client.Gate)
            {
                if (client.MatchesPrediction(stopId, routeId, vehicleId))
                {
                    queue(client);
                }
            }
        }
    }

    private static void Visit(LiveConnection[] clients, LiveAlert a, Action<LiveConnection> queue)
    {
        foreach (var client in clients)
        {
            lock (client.Gate)
            {
                if (client.Matches(a))
                {
                    queue(client);
                }
            }
        }
    }
}
