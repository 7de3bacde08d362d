using System.Threading.Channels;
using Akka;
using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Streams;
using Akka.Streams.Dsl;
using Fleet.Actors.Partitions;
using Fleet.Ingest.Events;
using Fleet.Tracking.Network;
using Fleet.Tracking.Output;
using Fleet.Tracking.Partitions;
using Fleet.Tracking.Vehicles;

namespace Fleet.Actors.Streams;

/// <summary>Sizes of a <see cref="TrackingStream"/>.</summary>
public sealed record TrackingStreamOptions
{
    /// <summary>Items the source holds before an offer waits (backpressure to the producer).</summary>
    public int Buffer { get; init; } = 8_192;

    /// <summary>Most items cut into one group (one batch per partition).</summary>
    public int MaxGroup { get; init; } = 4_096;

    /// <summary>Longest a group waits to fill (the latency a quiet stream adds).</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromMilliseconds(20);

    /// <summary>Batches awaiting their acknowledgement at once.</summary>
    public int InFlight { get; init; } = 64;

    /// <summary>Items buffered per graph running into <see cref="TrackingStream.Input"/>.</summary>
    public int PerProducerBuffer { get; init; } = 256;

    /// <summary>How long a partition may take to journal and track a batch before the stream fails.</summary>
    public TimeSpan AskTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// On a multi-node cluster: how long to wait for a batch's acknowledgement before sending it again (the partition
    /// was on a node that died and is recovering on another; the batch's id keeps it from being applied twice), until
    /// <see cref="AskTimeout"/>; null: sent once.
    /// </summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>
    /// On a multi-node cluster: the DistributedPubSub topic the partitions publish what they derived to; the stream
    /// subscribes to it and its sink takes every partition's results from there (every node's live state sees the whole
    /// fleet), not from the acknowledgements. Null: the acknowledgements carry the results.
    /// </summary>
    public string? Topic { get; init; }

    /// <summary>Results from the topic held for the sink at most (beyond: dropped and counted).</summary>
    public int TopicBuffer { get; init; } = 65_536;
}

/// <summary>What a <see cref="TrackingInput"/> carries.</summary>
public enum TrackingInputKind : byte
{
    /// <summary>A vehicle event for its partition.</summary>
    Event,

    /// <summary>A GTFS-RT stop update for the network stage.</summary>
    Update,

    /// <summary>The stream clock, for every partition.</summary>
    Clock,
}

/// <summary>One item into a <see cref="TrackingStream"/>: a vehicle event, a stop update or the clock.</summary>
/// <param name="Event">The event (kind <see cref="TrackingInputKind.Event"/>).</param>
/// <param name="Sequence">The event's source sequence number, 0 when none.</param>
/// <param name="Update">The stop update (kind <see cref="TrackingInputKind.Update"/>).</param>
/// <param name="Clock">The clock (kind <see cref="TrackingInputKind.Clock"/>).</param>
/// <param name="Kind">Which of them.</param>
public readonly record struct TrackingInput(VehicleEvent Event, long Sequence, StopUpdate Update, DateTime Clock, TrackingInputKind Kind)
{
    /// <summary>A vehicle event (a GTFS-RT stop event becomes a stop update); null when tracking has no use for it
    /// (no vehicle id, or a stop event without a trip).</summary>
    /// <param name="e">The event.</param>
    /// <param name="sequence">Its source sequence number, 0 when none.</param>
    public static TrackingInput? Of(in VehicleEvent e, long sequence = 0) =>
        e.Type == EventType.TripUpdateStop
            ? e.TripId is null ? null : Of(StopUpdates.From(e))
            : string.IsNullOrEmpty(e.VehicleId) ? null : new TrackingInput(e, sequence, default, default, TrackingInputKind.Event);

    /// <summary>A GTFS-RT stop update.</summary>
    /// <param name="update">The update.</param>
    public static TrackingInput Of(StopUpdate update) => new(default, 0, update, default, TrackingInputKind.Update);

    /// <summary>The stream clock.</summary>
    /// <param name="clock">The clock, UTC.</param>
    public static TrackingInput OfClock(DateTime clock) => new(default, 0, default, clock, TrackingInputKind.Clock);
}

/// <summary>
/// One pass of tracking through the partitions, as an Akka.Streams graph: a queue source (the producer waits when it
/// is full) merged with a merge hub (<see cref="TrackingStream.Input"/>, for graphs) -> GroupedWithin -> one <see cref="TrackBatch"/> per partition (by the vehicle id's stable hash) ->
/// SelectAsync asks the shard region (never more than <see cref="TrackingStreamOptions.InFlight"/> unacknowledged
/// batches: the region never buffers beyond that) -> one sink that feeds what the partitions derived, in order, to the
/// network stage (trip and stop boards), the learning predictor and the output.
/// </summary>
/// <remarks>
/// Overload slows the producer (its offers wait), never grows memory. GTFS-RT stop updates skip the partitions and
/// reach the network stage in order with the batches around them. Offers are for one producer at a time.
/// </remarks>
public sealed class TrackingStream : IAsyncDisposable
{
    private readonly ISourceQueueWithComplete<TrackingInput> _queue;
    private readonly UniqueKillSwitch _inputSwitch;
    private readonly Task _done;
    private readonly ActorMaterializer _materializer;
    private readonly NetworkTracker _network;
    // The network stage tracks TripUpdates' stop events: it is told which trips vehicle positions run.
    private readonly bool _tripsFromStopEvents;
    private readonly ITrackingOutput _output;
    private readonly IStopObserver? _observer;
    private readonly ListOutput _networkOut = new();
    private readonly HashSet<int> _partitionsSeen = [];
    private readonly Dictionary<int, TrackingDrops> _drops = [];
    private readonly int _partitions;
    private readonly string _origin = Guid.NewGuid().ToString("N");
    private readonly Channel<Work>? _topic;
    private readonly string? _topicName;
    private readonly IActorRef? _mediator;
    private readonly IActorRef? _subscriber;
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _batchNumber;
    private long _retries;
    private long _repeated;
    private long _topicBatches;
    private long _topicDropped;
    private DateTime _clock;
    private long _offered;
    private long _published;
    private long _alreadyApplied;
    private long _journaled;
    private long _batches;
    private long _inFlight;
    private long _stopUpdates;

    private TrackingStream(ActorSystem system, IActorRef region, int partitions, NetworkTracker network, ITrackingOutput output, IStopObserver? observer, TrackingStreamOptions options)
    {
        _partitions = partitions;
        _network = network;
        _tripsFromStopEvents = network.Options.TripUpdateStopEvents;
        _output = output;
        _observer = observer;
        _materializer = system.Materializer();
        // Two ways in, merged: the queue (OfferAsync, one producer at a time) and the hub (Input: any number of graphs
        // at once, each backpressured). Both count what they take in (Pending, WhenDrainedAsync).
        var (queue, queued) = Source.Queue<TrackingInput>(options.Buffer, OverflowStrategy.Backpressure).PreMaterialize(_materializer);
        var ((input, inputSwitch), fromHub) = MergeHub.Source<TrackingInput>(options.PerProducerBuffer)
            .ViaMaterialized(KillSwitches.Single<TrackingInput>(), Keep.Both)
            .PreMaterialize(_materializer);
        _queue = queue;
        _inputSwitch = inputSwitch;
        Input = input;
        var tracked = queued.Merge(fromHub.Select(Counted))
            .GroupedWithin(options.MaxGroup, options.MaxDelay)
            .SelectMany(Split)
            .SelectAsync(options.InFlight, work => work.Batch is { } batch ? AskAsync(region, batch, work, options) : Task.FromResult(work));
        if (options.Topic is { } topic)
        {
            // Every partition's results, from whichever node ran it, merged into the one sink (the stream's own come
            // this way too: their acknowledgements carry no derived events). Done when the queue is done.
            // GTFS-RT stop updates go the same way: published from this sink, applied by every node's sink.
            _topicName = topic;
            _mediator = DistributedPubSub.Get(system).Mediator;
            _topic = Channel.CreateBounded<Work>(new BoundedChannelOptions(options.TopicBuffer) { SingleReader = true, SingleWriter = true });
            _subscriber = system.ActorOf(Props.Create(() => new TopicSubscriber(topic, _topic.Writer, this)));
            tracked = tracked.Via(Flow.Create<Work>().Merge(ChannelSource.FromReader(_topic.Reader), eagerComplete: true));
        }
        else
        {
            _subscribed.SetResult();
        }

        _done = tracked.ToMaterialized(Sink.ForEach<Work>(Publish), Keep.Right).Run(_materializer);
    }

    /// <summary>
    /// The stream's input for graphs: any number may run into it at once (a merge hub), each backpressured by the
    /// partitions' acknowledgements. Make items with <see cref="TrackingInput.Of(in VehicleEvent, long)"/>,
    /// <see cref="TrackingInput.Of(StopUpdate)"/> and <see cref="TrackingInput.OfClock"/>. What is still in a graph
    /// when the stream completes is not tracked: complete the producers first.
    /// </summary>
    public Sink<TrackingInput, NotUsed> Input { get; }

    /// <summary>Completes when the stream has ended (completed, failed, or stopped with its actor system).</summary>
    public Task Completion => _done;

    /// <summary>Items taken in and gone through the sink (published), from the queue and the input together.</summary>
    public long Published => Interlocked.Read(ref _published);

    /// <summary>Completes once the stream takes the partitions' results from its topic (at once without one).</summary>
    public Task Subscribed => _subscribed.Task;

    /// <summary>Batches sent again because their acknowledgement did not come in time (see <see cref="TrackingStreamOptions.RetryAfter"/>).</summary>
    public long Retries => Interlocked.Read(ref _retries);

    /// <summary>Batches a partition answered as already applied (a retry whose first send had been applied).</summary>
    public long Repeated => Interlocked.Read(ref _repeated);

    /// <summary>Partition results taken from the topic (from every node's streams).</summary>
    public long TopicBatches => Interlocked.Read(ref _topicBatches);

    /// <summary>Partition results from the topic dropped because the sink was behind by more than the buffer.</summary>
    public long TopicDropped => Interlocked.Read(ref _topicDropped);

    /// <summary>Items offered and not yet through the sink (events waiting for tracking: where backpressure shows).</summary>
    public long Pending => Interlocked.Read(ref _offered) - Interlocked.Read(ref _published);

    /// <summary>Events the partitions skipped because their vehicle had applied them before a restart.</summary>
    public long AlreadyApplied => Interlocked.Read(ref _alreadyApplied);

    /// <summary>Events journaled and applied (those of acknowledged batches that were not applied before).</summary>
    public long Journaled => Interlocked.Read(ref _journaled);

    /// <summary>GTFS-RT stop updates through the network stage.</summary>
    public long StopUpdatesTracked => Interlocked.Read(ref _stopUpdates);

    /// <summary>Batches acknowledged.</summary>
    public long Batches => Interlocked.Read(ref _batches);

    /// <summary>Late, duplicate and corrected events and unknown journeys, as the partitions last reported them.</summary>
    public TrackingDrops Drops
    {
        get
        {
            lock (_drops)
            {
                return _drops.Values.Aggregate(default(TrackingDrops), (sum, d) => sum + d);
            }
        }
    }

    /// <summary>Batches sent and not yet acknowledged.</summary>
    public long InFlight => Interlocked.Read(ref _inFlight);

    /// <summary>Partitions this pass has sent to.</summary>
    public int Partitions
    {
        get
        {
            lock (_partitionsSeen)
            {
                return _partitionsSeen.Count;
            }
        }
    }

    /// <summary>Starts the graph.</summary>
    /// <param name="system">The node.</param>
    /// <param name="region">The partitions' shard region.</param>
    /// <param name="partitions">Partitions of the region (a vehicle's is its id's stable hash modulo this).</param>
    /// <param name="network">The network stage, fed from the sink only.</param>
    /// <param name="output">Where derived events go, from the sink only.</param>
    /// <param name="observer">A learning predictor to feed the published events to, or null.</param>
    /// <param name="options">Sizes; defaults when null.</param>
    public static TrackingStream Start(ActorSystem system, IActorRef region, int partitions, NetworkTracker network, ITrackingOutput output,
        IStopObserver? observer = null, TrackingStreamOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(region);
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(partitions);
        return new TrackingStream(system, region, partitions, network, output, observer, options ?? new TrackingStreamOptions());
    }

    /// <summary>Offers a vehicle event with its source sequence number (waits while the stream is full).</summary>
    public Task OfferAsync(VehicleEvent e, long sequence, CancellationToken cancellationToken = default) =>
        TrackingInput.Of(e, sequence) is { } item ? OfferAsync(item, cancellationToken) : Task.CompletedTask;

    /// <summary>Offers a GTFS-RT stop update for the network stage.</summary>
    public Task OfferAsync(StopUpdate update, CancellationToken cancellationToken = default) =>
        OfferAsync(TrackingInput.Of(update), cancellationToken);

    /// <summary>Offers the stream clock: every partition seen gets it (held events released, stale vehicles alerted).</summary>
    public Task OfferClockAsync(DateTime clock, CancellationToken cancellationToken = default) =>
        OfferAsync(TrackingInput.OfClock(clock), cancellationToken);

    /// <summary>Waits until everything offered so far went through the sink (the stream stays open).</summary>
    public async Task WhenDrainedAsync(CancellationToken cancellationToken = default)
    {
        while (Pending > 0)
        {
            await Task.Delay(2, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Completes the stream and waits until everything offered went through the sink.</summary>
    public async Task CompleteAsync()
    {
        _queue.Complete();
        _inputSwitch.Shutdown();
        await _done.ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try
        {
            await CompleteAsync().ConfigureAwait(false);
        }
        finally
        {
            _subscriber?.Tell(PoisonPill.Instance);
            _materializer.Dispose();
        }
    }

    private TrackingInput Counted(TrackingInput item)
    {
        Interlocked.Increment(ref _offered);
        return item;
    }

    private async Task OfferAsync(TrackingInput item, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _offered);
        var result = await _queue.OfferAsync(item, cancellationToken).ConfigureAwait(false);
        switch (result)
        {
            case QueueOfferResult.Failure failure:
                throw new InvalidOperationException("tracking's stream failed", failure.Cause);
            case QueueOfferResult.QueueClosed:
                throw new InvalidOperationException("tracking's stream is closed");
        }
    }

    // Cuts a group into work, in order: the group's stop updates, then one batch per partition with events, then (when
    // the clock was offered) an empty batch for every other partition seen. The last work carries the group's count.
    private IEnumerable<Work> Split(IEnumerable<TrackingInput> group)
    {
        var byPartition = new SortedDictionary<int, (List<VehicleEvent> Events, List<long> Sequences)>();
        var updates = new List<StopUpdate>();
        var clockOffered = false;
        var items = 0;
        foreach (var item in group)
        {
            items++;
            switch (item.Kind)
            {
                case TrackingInputKind.Event:
                    var e = item.Event;
                    if (_tripsFromStopEvents && e.TripId is { } positionTrip)
                    {
                        _network.OnVehiclePosition(positionTrip);
                    }

                    var at = e.ReceiveTime != default ? e.ReceiveTime : e.EventTime;
                    _clock = at > _clock ? at : _clock;
                    var p = VehiclePartition.PartitionOf(e.VehicleId, _partitions);
                    if (!byPartition.TryGetValue(p, out var batch))
                    {
                        byPartition[p] = batch = ([], []);
                    }

                    batch.Events.Add(e);
                    batch.Sequences.Add(item.Sequence);
                    break;
                case TrackingInputKind.Update:
                    updates.Add(item.Update);
                    break;
                case TrackingInputKind.Clock:
                    clockOffered = true;
                    _clock = item.Clock > _clock ? item.Clock : _clock;
                    break;
            }
        }

        var work = new List<Work>();
        if (updates.Count > 0)
        {
            work.Add(new Work { Updates = updates });
        }

        foreach (var (p, batch) in byPartition)
        {
            work.Add(new Work { Batch = new TrackBatch(p, [.. batch.Events], [.. batch.Sequences], _clock, NextId()) });
        }

        lock (_partitionsSeen)
        {
            _partitionsSeen.UnionWith(byPartition.Keys);
            if (clockOffered)
            {
                foreach (var p in _partitionsSeen.Where(p => !byPartition.ContainsKey(p)).Order())
                {
                    work.Add(new Work { Batch = new TrackBatch(p, [], [], _clock, NextId()) });
                }
            }
        }

        if (work.Count == 0)
        {
            work.Add(new Work());
        }

        work[^1].Items = items;
        return work;
    }

    private BatchId NextId() => new(_origin, ++_batchNumber);

    private async Task<Work> AskAsync(IActorRef region, TrackBatch batch, Work work, TrackingStreamOptions options)
    {
        Interlocked.Increment(ref _inFlight);
        try
        {
            var until = DateTime.UtcNow + options.AskTimeout;
            while (true)
            {
                var wait = options.RetryAfter is { } retry && retry < options.AskTimeout ? retry : options.AskTimeout;
                try
                {
                    work.Tracked = await region.Ask<BatchTracked>(batch, wait).ConfigureAwait(false);
                    if (work.Tracked.Repeated)
                    {
                        Interlocked.Increment(ref _repeated);
                    }

                    return work;
                }
                catch (AskTimeoutException) when (options.RetryAfter is not null && DateTime.UtcNow + wait <= until)
                {
                    // The partition's node may have died: sharding starts it on a survivor (recovered from the store) and
                    // routes the same batch there; its id makes a batch the dead node had applied a repeat, not a double.
                    Interlocked.Increment(ref _retries);
                }
            }
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    // The one consumer: the network stage, the learning predictor and the output see every derived event in order.
    private void Publish(Work work)
    {
        if (work.Updates is { } updates)
        {
            if (!work.FromTopic)
            {
                Interlocked.Add(ref _stopUpdates, updates.Count);
            }

            if (_mediator is not null && !work.FromTopic)
            {
                _mediator.Tell(new Publish(_topicName, new StopUpdatesSeen([.. updates])));
            }
            else
            {
                foreach (var u in updates)
                {
                    _networkOut.Events.Clear();
                    _network.OnStopUpdate(u, _networkOut);
                    PublishNetwork();
                }

                _networkOut.Events.Clear();
                _network.OnStopUpdatesDone(_networkOut);
                PublishNetwork();
            }
        }

        if (work.Tracked is { } tracked)
        {
            if (work.FromTopic)
            {
                Interlocked.Increment(ref _topicBatches);
            }

            foreach (var d in tracked.Derived)
            {
                _networkOut.Events.Clear();
                _observer?.Observe(d);
                _network.OnDerived(d, _networkOut);
                _output.Publish(d);
                PublishNetwork();
            }

            lock (_drops)
            {
                _drops[tracked.Partition] = tracked.Drops;
            }

            if (!work.FromTopic)
            {
                Interlocked.Add(ref _alreadyApplied, tracked.AlreadyApplied);
                Interlocked.Add(ref _journaled, tracked.Applied);
                Interlocked.Increment(ref _batches);
            }
        }

        Interlocked.Add(ref _published, work.Items);
    }

    private void PublishNetwork()
    {
        foreach (var n in _networkOut.Events)
        {
            _output.Publish(n);
        }
    }

    private sealed class Work
    {
        public TrackBatch? Batch { get; init; }

        public List<StopUpdate>? Updates { get; init; }

        public BatchTracked? Tracked { get; set; }

        public bool FromTopic { get; init; }

        public int Items { get; set; }
    }

    // Subscribes to the partitions' topic and hands what comes to the stream (never blocks: a full buffer drops, counted).
    private sealed class TopicSubscriber : ReceiveActor
    {
        private readonly string _topic;

        public TopicSubscriber(string topic, ChannelWriter<Work> writer, TrackingStream stream)
        {
            _topic = topic;
            Receive<SubscribeAck>(_ => stream._subscribed.TrySetResult());
            Receive<BatchTracked>(t => Write(new Work { Tracked = t, FromTopic = true }));
            Receive<StopUpdatesSeen>(u => Write(new Work { Updates = [.. u.Updates], FromTopic = true }));

            void Write(Work work)
            {
                if (!writer.TryWrite(work))
                {
                    Interlocked.Increment(ref stream._topicDropped);
                }
            }
        }

        protected override void PreStart() => DistributedPubSub.Get(Context.System).Mediator.Tell(new Subscribe(_topic, Self));

        protected override void PostStop() => DistributedPubSub.Get(Context.System).Mediator.Tell(new Unsubscribe(_topic, Self));
    }
}
