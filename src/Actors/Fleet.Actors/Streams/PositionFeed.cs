using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using Fleet.Actors.Partitions;
using Fleet.Ingest.Events;

namespace Fleet.Actors.Streams;

/// <summary>Positions a node's sources received, for the other nodes' maps (DistributedPubSub topic <see cref="PositionFeed.Topic"/>).</summary>
/// <param name="Origin">The feed that sent them (a node skips its own).</param>
/// <param name="Events">The events, in the order the node received them.</param>
public sealed record PositionsSeen(string Origin, VehicleEvent[] Events) : IFleetMessage;

/// <summary>GTFS-RT stop updates a node's stream took in, for every node's trip and stop boards (the partitions' topic).</summary>
/// <param name="Updates">The updates, in the order the feed gave them.</param>
public sealed record StopUpdatesSeen(Fleet.Tracking.Network.StopUpdate[] Updates) : IFleetMessage;

/// <summary>
/// On a multi-node cluster, the vehicles' positions each node's sources receive, shared with every other node so each
/// node's map shows the whole fleet (tracking's results travel on the partitions' own topic). A node collects what its
/// sources publish (<see cref="Add"/>) and sends it in one message per <see cref="Flush"/>; what other nodes send
/// reaches the callback, on the subscriber actor's thread, in each sender's order.
/// </summary>
/// <remarks>Thread-safety: <see cref="Add"/> and <see cref="Flush"/> may be called concurrently.</remarks>
public sealed class PositionFeed : IDisposable
{
    /// <summary>The DistributedPubSub topic.</summary>
    public const string Topic = "live-positions";

    private readonly string _origin = Guid.NewGuid().ToString("N");
    private readonly IActorRef _mediator;
    private readonly IActorRef _subscriber;
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private List<VehicleEvent> _pending = [];
    private long _sent;
    private long _received;

    /// <summary>Subscribes to the other nodes' positions.</summary>
    /// <param name="system">The node.</param>
    /// <param name="remote">Called with each batch of another node's positions.</param>
    public PositionFeed(ActorSystem system, Action<VehicleEvent[]> remote)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(remote);
        _mediator = DistributedPubSub.Get(system).Mediator;
        _subscriber = system.ActorOf(Props.Create(() => new Subscriber(this, remote)));
    }

    /// <summary>Completes once the other nodes' positions come.</summary>
    public Task Subscribed => _subscribed.Task;

    /// <summary>Positions sent to the other nodes.</summary>
    public long Sent => Interlocked.Read(ref _sent);

    /// <summary>Positions received from the other nodes.</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>Collects a position (or sign-off) this node's sources received.</summary>
    public void Add(in VehicleEvent e)
    {
        lock (_gate)
        {
            _pending.Add(e);
        }
    }

    /// <summary>Sends what was collected since the last flush (nothing when nothing was).</summary>
    public void Flush()
    {
        List<VehicleEvent> batch;
        lock (_gate)
        {
            if (_pending.Count == 0)
            {
                return;
            }

            (batch, _pending) = (_pending, []);
        }

        Interlocked.Add(ref _sent, batch.Count);
        _mediator.Tell(new Publish(Topic, new PositionsSeen(_origin, [.. batch])));
    }

    /// <inheritdoc />
    public void Dispose() => _subscriber.Tell(PoisonPill.Instance);

    private sealed class Subscriber : ReceiveActor
    {
        public Subscriber(PositionFeed feed, Action<VehicleEvent[]> remote)
        {
            Receive<SubscribeAck>(_ => feed._subscribed.TrySetResult());
            Receive<PositionsSeen>(p =>
            {
                if (p.Origin == feed._origin)
                {
                    return; // this node's own: its map has them already
                }

                Interlocked.Add(ref feed._received, p.Events.Length);
                remote(p.Events);
            });
        }

        protected override void PreStart() => DistributedPubSub.Get(Context.System).Mediator.Tell(new Subscribe(Topic, Self));

        protected override void PostStop() => DistributedPubSub.Get(Context.System).Mediator.Tell(new Unsubscribe(Topic, Self));
    }
}
