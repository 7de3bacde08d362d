using Fleet.Dashboard.Live;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection;

namespace Fleet.Dashboard.Hosting;

/// <summary>
/// The SignalR hub at <c>/hubs/live</c>. Clients call <see cref="Subscribe"/> and <see cref="Unsubscribe"/>;
/// the server pushes <c>vehicles</c>, <c>removed</c>, <c>predictions</c>, <c>withdrawn</c> and <c>alerts</c> through the typed
/// client <see cref="ILiveClient"/> (names in <see cref="LiveMethods"/>).
/// </summary>
/// <remarks>A hub instance lives for one call; the state is in <see cref="LiveEvents"/>.</remarks>
public sealed class LiveHub(LiveEvents live, IServiceProvider services) : Hub<ILiveClient>
{
    /// <summary>The hub's path.</summary>
    public const string Path = "/hubs/live";

    /// <inheritdoc />
    public override Task OnConnectedAsync()
    {
        live.Connect(Context.ConnectionId, Context.Abort);
        return base.OnConnectedAsync();
    }

    /// <inheritdoc />
    public override Task OnDisconnectedAsync(Exception? exception)
    {
        live.Disconnect(Context.ConnectionId);
        return base.OnDisconnectedAsync(exception);
    }

    /// <summary>Subscribes to a stop, route, vehicle or box (<c>minLon,minLat,maxLon,maxLat</c>).</summary>
    /// <returns>The number of subscriptions the connection now holds.</returns>
    public int Subscribe(string kind, string id)
    {
        if (!Subscription.TryParse(kind, id, out var subscription, out var error))
        {
            throw new HubException(error);
        }

        subscription = Resolve(subscription);
        if (Unknown(subscription) is { } unknown)
        {
            // Said at once, rather than a subscription that never receives anything.
            throw new HubException(unknown);
        }

        try
        {
            live.Subscribe(Context.ConnectionId, subscription);
        }
        catch (ArgumentException ex)
        {
            throw new HubException(ex.Message);
        }

        return live.SubscriptionsOf(Context.ConnectionId).Count;
    }

    // A route named by its short name (what riders call it) is followed by its route_id.
    private Subscription Resolve(Subscription s) =>
        s.Kind == SubscriptionKind.Route && services.GetService<ITransitNetwork>()?.ResolveRoute(s.Id) is { } routeId && routeId != s.Id
            ? s with { Id = routeId }
            : s;

    // The id a subscription names, when nothing known has it: a stop or route the network does not have (and nothing
    // live mentions), a vehicle that is not on the map.
    private string? Unknown(Subscription s)
    {
        var network = services.GetService<ITransitNetwork>();
        switch (s.Kind)
        {
            case SubscriptionKind.Stop when network is not null && network.Stop(s.Id) is null && live.PredictionsAt(s.Id).Count == 0:
                return $"unknown stop '{s.Id}': not in the network's stops";
            case SubscriptionKind.Route when network is not null && network.Routes.Count > 0
                && !network.Routes.Any(r => r.Id == s.Id) && !live.Vehicles().Any(v => v.RouteId == s.Id):
                return $"unknown route '{s.Id}': neither a route_id nor the short name of one route";
            case SubscriptionKind.Vehicle when live.Vehicle(s.Id) is null:
                return $"unknown vehicle '{s.Id}': no vehicle of that id is on the map now";
            default:
                return null;
        }
    }

    /// <summary>Removes a subscription.</summary>
    /// <returns>True when the connection held it.</returns>
    public bool Unsubscribe(string kind, string id)
    {
        if (!Subscription.TryParse(kind, id, out var subscription, out var error))
        {
            throw new HubException(error);
        }

        return live.Unsubscribe(Context.ConnectionId, Resolve(subscription));
    }
}

/// <summary>Pushes <see cref="LiveEvents"/> batches through the hub.</summary>
public sealed class HubLiveTransport(IHubContext<LiveHub, ILiveClient> hub) : ILiveTransport
{
    /// <inheritdoc />
    public ILiveClient Client(string clientId) => hub.Clients.Client(clientId);
}

/// <summary>Runs the <see cref="LiveEvents"/> flush loop for the host's lifetime.</summary>
public sealed class LiveEventsService(LiveEvents live) : Microsoft.Extensions.Hosting.BackgroundService
{
    /// <inheritdoc />
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => live.RunAsync(stoppingToken);
}
