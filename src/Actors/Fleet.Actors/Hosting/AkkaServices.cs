using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Fleet.Actors.Hosting;

/// <summary>Wires tracking's node into a host (the web host of <c>fleet serve</c>) with Akka.Hosting.</summary>
public static class AkkaServices
{
    /// <summary>
    /// Adds the actor system <c>fleet</c> (Akka.Hosting: started and stopped with the host, coordinated shutdown) with
    /// Fleet's configuration for <paramref name="options"/>, joined to itself (a cluster of one), and a
    /// <see cref="TrackingCluster"/> on it for the sources that track.
    /// </summary>
    public static IServiceCollection AddFleetTracking(this IServiceCollection services, FleetAkkaOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        FleetAkka.PrepareStore(options);
        services.AddSingleton(options);
        services.AddAkka(FleetAkka.SystemName, builder => builder
            .AddHocon(FleetAkka.Config(options), HoconAddMode.Prepend)
            .AddStartup((system, registry) =>
            {
                // Not awaited: a node whose seeds are not up yet keeps trying (TrackingCluster waits for Up).
                _ = FleetAkka.JoinAsync(Cluster.Get(system), options);
            }));
        services.AddSingleton(sp => new TrackingCluster(options, sp.GetRequiredService<ActorSystem>()));
        return services;
    }
}
