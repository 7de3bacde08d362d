using Akka.Actor;

namespace Fleet.Actors.Hosting;

/// <summary>
/// The node tracking runs on, started on first use (<see cref="GetSystemAsync"/>) and stopped with the host: one per
/// process, shared by every source that tracks on it.
/// </summary>
public sealed class TrackingCluster(FleetAkkaOptions options) : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private Task<ActorSystem>? _system;

    /// <summary>The node's settings (store, partitions, address).</summary>
    public FleetAkkaOptions Options { get; } = options ?? throw new ArgumentNullException(nameof(options));

    /// <summary>The running node (started and joined on the first call).</summary>
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

        if (system is { IsCompletedSuccessfully: true })
        {
            await CoordinatedShutdown.Get(system.Result).Run(CoordinatedShutdown.ClrExitReason.Instance).ConfigureAwait(false);
        }
    }
}
