using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
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
                // Not awaited: a node whose seeds are not up yet keeps trying (TrackingCluster waits for Up); a join
                // that fails for good is logged, and the node never reports Up (/api/health has no cluster section).
                FleetAkka.JoinAsync(Cluster.Get(system), options).ContinueWith(
                    join => system.Log.Error(join.Exception?.GetBaseException(), "Fleet: the node could not join its cluster (seeds: {0})",
                        options.Seeds.Count == 0 ? "itself" : string.Join(", ", options.Seeds)),
                    CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            }));
        services.AddSingleton(sp => new TrackingCluster(options, sp.GetRequiredService<ActorSystem>()));
        return services;
    }
}
