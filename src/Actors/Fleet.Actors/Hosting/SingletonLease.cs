using Akka.Actor;
using Akka.Cluster.Tools.Singleton;

namespace Fleet.Actors.Hosting;

/// <summary>
/// Who runs a cluster-wide job (a GTFS-RT poller): Akka's cluster singleton for <see cref="Name"/> lives on the oldest
/// node; this node holds the lease while the singleton runs here (<see cref="Held"/>). When the holder dies, the Split
/// Brain Resolver downs it and the singleton (and the lease) moves to the next oldest node.
/// </summary>
public sealed class SingletonLease : IDisposable
{
    private readonly IActorRef _manager;
    private volatile TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _isHeld;

    private SingletonLease(ActorSystem system, string name)
    {
        Name = name;
        _manager = system.ActorOf(
            ClusterSingletonManager.Props(Props.Create(() => new Holder(this)), PoisonPill.Instance, ClusterSingletonManagerSettings.Create(system)),
            name);
    }

    /// <summary>The singleton's name (the same on every node for the same job).</summary>
    public string Name { get; }

    /// <summary>True while this node runs the job.</summary>
    public bool Held => _isHeld;

    /// <summary>Starts this node's side of the singleton <paramref name="name"/> (an actor name: letters, digits, '-').</summary>
    public static SingletonLease Start(ActorSystem system, string name)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentException.ThrowIfNullOrEmpty(name);
        return new SingletonLease(system, name);
    }

    /// <summary>Completes when this node holds the lease (at once when it does).</summary>
    public Task WhenHeldAsync(CancellationToken cancellationToken) => _held.Task.WaitAsync(cancellationToken);

    /// <inheritdoc />
    public void Dispose() => _manager.Tell(PoisonPill.Instance);

    private void Acquired()
    {
        _isHeld = true;
        _held.TrySetResult();
    }

    private void Released()
    {
        _isHeld = false;
        _held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    // The singleton itself: it holds nothing but the lease, for as long as it runs on this node.
    private sealed class Holder(SingletonLease lease) : UntypedActor
    {
        protected override void PreStart() => lease.Acquired();

        protected override void PostStop() => lease.Released();

        protected override void OnReceive(object message) => Unhandled(message);
    }
}
