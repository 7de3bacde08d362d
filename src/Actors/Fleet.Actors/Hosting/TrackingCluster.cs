using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;

namespace Fleet.Actors.Hosting;

/// <summary>
/// The node tracking runs on, shared by every source that tracks on it: the web host's (Akka.Hosting starts and stops
/// it, see <see cref="AkkaServices.AddFleetTracking"/>), or, for tools and tests, one this object starts on first use
/// and stops when disposed.
/// </summary>
public sealed class TrackingCluster : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly bool _owned;
    private Task<ActorSystem>? _system;

    /// <summary>A node started on first use (<see cref="GetSystemAsync"/>) and stopped by <see cref="DisposeAsync"/>.</summary>
    public TrackingCluster(FleetAkkaOptions options)
    {
        Options = options ?? throw new ArgumentNullException(nameof(options));
        _owned = true;
    }

    /// <summary>A node someone else runs (Akka.Hosting): <see cref="GetSystemAsync"/> waits until it is up.</summary>
    public TrackingCluster(FleetAkkaOptions options, ActorSystem system)
    {
        ArgumentNullException.ThrowIfNull(system);
        Options = options ?? throw new ArgumentNullException(nameof(options));
        _system = FleetAkka.WhenUpAsync(system);
    }

    /// <summary>The node's settings (store, partitions, address).</summary>
    public FleetAkkaOptions Options { get; }

    /// <summary>The running node, once it is an Up member of its cluster.</summary>
    public Task<ActorSystem> GetSystemAsync()
    {
        lock (_gate)
        {
            return _system ??= FleetAkka.StartNodeAsync(Options);
        }
    }

    /// <summary>The node and its cluster as this node sees them, or null before it is up.</summary>
    public ClusterInfo? Info()
    {
        Task<ActorSystem>? system;
        lock (_gate)
        {
            system = _system;
        }

        if (system is not { IsCompletedSuccessfully: true })
        {
            return null;
        }

        var cluster = Cluster.Get(system.Result);
        var state = cluster.State;
        return new ClusterInfo(
            cluster.SelfAddress.ToString(),
            [.. state.Members.Where(m => m.Status == MemberStatus.Up).Select(m => m.Address.ToString()).Order(StringComparer.Ordinal)],
            [.. state.Unreachable.Select(m => m.Address.ToString()).Order(StringComparer.Ordinal)],
            state.Leader?.ToString(),
            Options.Partitions);
    }

    /// <summary><see cref="Info"/> with the partitions each shard region runs on this node (asked of the regions).</summary>
    public async Task<ClusterInfo?> InfoAsync(CancellationToken cancellationToken = default)
    {
        if (Info() is not { } info)
        {
            return null;
        }

        var system = await GetSystemAsync().ConfigureAwait(false);
        var sharding = ClusterSharding.Get(system);
        var here = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var name in sharding.ShardTypeNames)
        {
            try
            {
                var state = await sharding.ShardRegion(name).Ask<CurrentShardRegionState>(GetShardRegionState.Instance, TimeSpan.FromSeconds(2), cancellationToken)
                    .ConfigureAwait(false);
                here[name] = state.Shards.Sum(s => s.EntityIds.Count);
            }
            catch (AskTimeoutException)
            {
                // a region busy starting: left out of this answer
            }
        }

        return info with { PartitionsHere = here };
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        Task<ActorSystem>? system;
        lock (_gate)
        {
            system = _system;
        }

        if (_owned && system is { IsCompletedSuccessfully: true })
        {
            await CoordinatedShutdown.Get(system.Result).Run(CoordinatedShutdown.ClrExitReason.Instance).ConfigureAwait(false);
        }
    }
}

/// <summary>A node's view of its cluster (<c>/api/health</c>'s <c>cluster</c>).</summary>
/// <param name="Self">This node's address.</param>
/// <param name="Members">The Up members' addresses, sorted.</param>
/// <param name="Unreachable">Members this node's failure detector finds unreachable (downed by the Split Brain Resolver
/// once the cluster is stable).</param>
/// <param name="Leader">The cluster leader's address (null while there is none).</param>
/// <param name="Partitions">Partitions of the vehicle stream, shared out among the members by cluster sharding.</param>
/// <param name="PartitionsHere">Per shard region (<c>live-partition</c> for the live sources), the partitions running on
/// this node now; null when not asked.</param>
public sealed record ClusterInfo(string Self, IReadOnlyList<string> Members, IReadOnlyList<string> Unreachable, string? Leader, int Partitions,
    IReadOnlyDictionary<string, int>? PartitionsHere = null);
