using Akka.Actor;
using Akka.Cluster;

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
public sealed record ClusterInfo(string Self, IReadOnlyList<string> Members, IReadOnlyList<string> Unreachable, string? Leader, int Partitions);
