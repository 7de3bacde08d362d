using Akka.Actor;

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
