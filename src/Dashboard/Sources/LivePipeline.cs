using Fleet.Actors.Streams;
using Fleet.Actors.Partitions;
using Fleet.Actors.Hosting;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Threading.Channels;
using Akka;
using Akka.Streams;
using Akka.Streams.Dsl;
using Fleet.Ingest.Streams;
using Fleet.Dashboard.Hosting;
using Fleet.Dashboard.Live;
using Fleet.Gtfs.Realtime;
using Fleet.Ingest.Events;
using Fleet.Tracking;
using Fleet.Tracking.Network;
using Fleet.Tracking.Partitions;
using Fleet.Tracking.Output;
using Fleet.Tracking.Replay;
using Fleet.Tracking.Schedule;
using Fleet.Tracking.Vehicles;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TransitRealtime;

namespace Fleet.Dashboard.Sources;

/// <summary>
/// The path every input of <c>fleet serve</c> takes from a parsed event to the live state: the vehicle's position
/// goes to <see cref="LiveEvents"/> at once, and the event goes through tracking (trip join, map matching,
/// arrivals, alerts, predictions) when serve has a GTFS network: on the node's Akka.NET partitions, through a
/// <see cref="TrackingStream"/> whose sink hands the derived events to the live state through
/// <see cref="LiveTrackingOutput"/>. GTFS-RT snapshots are handled here too: vehicle positions become position
/// events, trip updates go to tracking's trip board (cancelled trips and skipped stops included).
/// </summary>
/// <remarks>
/// <para>One instance serves the live sources (every MQTT broker, GTFS-RT feed and the embedded broker together), on
/// the region <c>live-partition</c>: journaled with a store (<c>fleet serve --store</c>), applied in memory without one.
/// A replay tracks on partitions of its own per pass (<see cref="PersistentTracking"/>) and uses a pipeline only to
/// publish.</para>
/// <para><b>Two ways in.</b> Sources (MQTT, GTFS-RT polling, the embedded broker, a cluster's replay: Akka.Streams
/// graphs, most from <c>Fleet.Ingest.Streams</c>) run into <see cref="EventSink"/>, <see cref="RecordedEventSink"/>
/// and <see cref="GtfsRtSink"/>, which publish each position and run into the tracking stream's merge hub
/// (<see cref="TrackingStream.Input"/>): backpressure from the partitions' acknowledgements reaches the source's
/// graph, and from there the broker, the poller or the publisher. Callers with a loop of their own (the benchmarks'
/// load generators) call <see cref="Ingest"/>, <see cref="Track"/> or <see cref="IngestGtfsRt"/>: their items go
/// through a bounded channel (<see cref="MaxQueued"/>) read by the same graph; when it is full the caller waits.</para>
/// <para><b>Clock.</b> Tracking judges lateness and staleness by its stream clock. The live sources' pipeline
/// (<c>followEventTime</c>) uses event time (<see cref="EventTimeClock"/>) instead of the wall-clock receive time. An
/// event is late when it is older than what its own vehicle has already had tracked (beyond the late tolerance): it
/// is dropped and counted (<c>fleet_tracking_late_events_total</c>), never silently. The clock goes in every
/// <see cref="PartitionTracking.ClockEvery"/> from a tick source, so quiet vehicles go stale.</para>
/// <para>Thread-safety: every member may be called concurrently (the clock is read and moved under a short lock;
/// publishing to <see cref="LiveEvents"/> never blocks).</para>
/// </remarks>
#pragma warning disable CA1001 // _partitions: disposed when RunAsync ends (the pipeline's life is the run's).
public sealed partial class LivePipeline : IMetricsContributor
{
    /// <summary>Items the loop-reading callers may have waiting for the tracking stream; beyond, they wait (backpressure).</summary>
    public const int MaxQueued = 65_536;

    /// <summary>How often a cluster node sends the positions its sources received to the other nodes' maps.</summary>
    public static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(100);

    // Late drops are logged at most this often (with the count since the last line); the metric counts each one.
    private static readonly TimeSpan LateLogInterval = TimeSpan.FromSeconds(10);

    private readonly LiveEvents _live;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TimeSpan _lateness;
    private readonly TimeSpan _tolerance;
    private long _lateLogged;
    private long _lateLoggedAt;
    private readonly Func<TimeSpan>? _shift;
    // The event-time clock, moved under _clockGate by every producer.
    private readonly EventTimeClock? _clock;
    private readonly Lock _clockGate = new();
    private readonly TripMatcher? _matcher;
    // Tracking on the node's partitions; null without a GTFS network (events are only published).
    private readonly PartitionTracking? _partitions;
    private readonly TrackingCluster? _cluster;
    // On a multi-node cluster: positions shared with the other nodes' maps (set once the pipeline runs).
    private volatile PositionFeed? _positions;
    // The loop-reading callers' way in (see remarks), read into the tracking stream once it runs.
    private readonly Channel<TrackingInput> _input = Channel.CreateBounded<TrackingInput>(
        new BoundedChannelOptions(MaxQueued) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // Items handed to the tracking stream by any way in; drained when the stream has published as many.
    private long _accepted;
    private UniqueKillSwitch? _ticks;

    /// <summary>Creates a pipeline.</summary>
    /// <param name="live">Where vehicle states, predictions and alerts go.</param>
    /// <param name="network">The GTFS network; without one (or with another kind) events skip tracking.</param>
    /// <param name="time">The wall clock.</param>
    /// <param name="catalog">The trip catalog to track against (built from <paramref name="network"/> when null).</param>
    /// <param name="shift">Added to every published time (a replay shown as live); none when null.</param>
    /// <param name="predictor">Arrival predictor for tracking (delay carried forward when null).</param>
    /// <param name="output">Where tracking's derived events go (a <see cref="LiveTrackingOutput"/> on
    /// <paramref name="live"/> when null; the hub benchmark wraps it to stamp ingest times).</param>
    /// <param name="followEventTime">True for live sources: tracking's clock follows event time (see remarks), not
    /// the events' receive time.</param>
    /// <param name="logger">Where dropped late events are reported (event 5050).</param>
    /// <param name="options">Tracking's thresholds; <see cref="TrackingOptions.Live"/> when null.</param>
    /// <param name="cluster">The node tracking runs on (required with a GTFS network).</param>
    /// <param name="region">The partitions' region on that node (one per pipeline).</param>
    public LivePipeline(LiveEvents live, ITransitNetwork? network, TimeProvider time, GtfsTripCatalog? catalog = null,
        Func<TimeSpan>? shift = null, IArrivalPredictor? predictor = null, ITrackingOutput? output = null,
        bool followEventTime = false, ILogger? logger = null, TrackingOptions? options = null, TrackingCluster? cluster = null,
        string region = PartitionTracking.RegionName)
    {
        ArgumentNullException.ThrowIfNull(live);
        ArgumentNullException.ThrowIfNull(time);
        _live = live;
        _time = time;
        _shift = shift;
        _cluster = cluster;
        _logger = logger ?? NullLogger.Instance;
        options ??= TrackingOptions.Live();
        options.Validate();
        _lateness = options.Lateness;
        _tolerance = options.LateTolerance;
        if (followEventTime)
        {
            _clock = new EventTimeClock(time, options.Lateness);
        }

        if ((network as GtfsNetwork)?.Schedule is { } schedule)
        {
            ArgumentNullException.ThrowIfNull(cluster, "cluster (tracking runs on the node's partitions)");
            catalog ??= new GtfsTripCatalog(schedule);
            _matcher = new TripMatcher(schedule);
            _partitions = new PartitionTracking(cluster, region, catalog, options, output ?? new LiveTrackingOutput(live, shift),
                predictor ?? new DelayCarriedForwardPredictor());
        }
        else
        {
            _started.SetResult();
        }
    }

    /// <summary>The stream into the partitions, once started (null without tracking or before).</summary>
    public TrackingStream? Stream => _partitions?.Stream;

    /// <summary>What the live sources' partitions dropped or corrected; null without tracking.</summary>
    public TrackingDrops? Drops => _partitions?.Stream?.Drops;

    /// <summary>True when events go through tracking (serve has a GTFS network).</summary>
    public bool Tracking => _partitions is not null;

    /// <summary>Completes once the pipeline runs (<see cref="RunAsync"/>): streamed sources wait for it before they
    /// run into <see cref="EventSink"/> or <see cref="GtfsRtSink"/>. At once without tracking.</summary>
    public Task Started => _started.Task;

    /// <summary>The event-time stream clock, or null before the first event or without <c>followEventTime</c>.</summary>
    public DateTime? StreamClock
    {
        get
        {
            lock (_clockGate)
            {
                return _clock?.Now;
            }
        }
    }

    /// <summary>An event enters the pipeline: tracked, then published as the vehicle's state.</summary>
    /// <param name="ev">The event.</param>
    /// <param name="source">Its source, for the counters.</param>
    /// <param name="sequence">Its source sequence number, increasing per vehicle (a recording's line), or 0 when the
    /// source has none: a partition skips an event whose vehicle has applied that number or a later one (a source that
    /// resumes from a checkpoint sends some events again).</param>
    public void Ingest(in VehicleEvent ev, SourceStatus source, long sequence = 0)
    {
        Track(ev, sequence);
        Publish(ev, source);
    }

    /// <summary>Hands an event to tracking only (waits while <see cref="MaxQueued"/> items wait: backpressure).</summary>
    public void Track(in VehicleEvent ev, long sequence = 0)
    {
        if (Tracking && Accept(ev, sequence) is { } item)
        {
            Write(item);
        }
    }

    /// <summary>
    /// The sink a streamed source of vehicle events runs into (after <see cref="Started"/>): each event is published
    /// as its vehicle's state and counted on <paramref name="source"/>, then tracked through the partitions, with
    /// backpressure from their acknowledgements.
    /// </summary>
    /// <param name="source">The source, for its counters.</param>
    /// <exception cref="InvalidOperationException">The pipeline has not started.</exception>
    public Sink<VehicleEvent, NotUsed> EventSink(SourceStatus source) =>
        Flow.Create<VehicleEvent>().Select(ev => new RecordedEvent(ev, 0, default)).To(RecordedEventSink(source));

    /// <summary>
    /// The sink a streamed recording runs into (after <see cref="Started"/>): as <see cref="EventSink"/>, with each
    /// event's line number as its sequence number (a partition skips what its vehicle applied: a resumed recording
    /// sends some lines again).
    /// </summary>
    /// <param name="source">The source, for its counters.</param>
    /// <exception cref="InvalidOperationException">The pipeline has not started.</exception>
    public Sink<RecordedEvent, NotUsed> RecordedEventSink(SourceStatus source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var published = Flow.Create<RecordedEvent>().Select(r =>
        {
            Publish(r.Event, source);
            return r;
        });
        if (!Tracking)
        {
            return published.To(Sink.Ignore<RecordedEvent>());
        }

        return published
            .Select(r => Accept(r.Event, r.Line) is { } item ? (Tracked: true, Item: item) : (Tracked: false, Item: default))
            .Where(x => x.Tracked)
            .Select(x => Counted(x.Item))
            .To(StartedStream().Input);
    }

    /// <summary>
    /// The sink a streamed GTFS-RT source runs into (after <see cref="Started"/>): see <see cref="IngestGtfsRt"/>.
    /// </summary>
    /// <param name="source">The source, for its counters.</param>
    /// <exception cref="InvalidOperationException">The pipeline has not started.</exception>
    public Sink<GtfsRtFeed, NotUsed> GtfsRtSink(SourceStatus source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var items = Flow.Create<GtfsRtFeed>().SelectMany(f => Normalize(f.Feed, f.ReceiveTime, source, publishPositions: true));
        return Tracking ? items.Select(Counted).To(StartedStream().Input) : items.To(Sink.Ignore<TrackingInput>());
    }

    /// <summary>Publishes an event's vehicle state (a position) or its departure (signed off), and counts it.</summary>
    public void Publish(in VehicleEvent ev, SourceStatus source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var shift = _shift?.Invoke() ?? TimeSpan.Zero;
        var eventTime = ev.EventTime + shift;
        source.CountEvent(eventTime);
        _live.Metrics.CountEvent(eventTime);
        if (ShowVehicle(ev, shift))
        {
            _positions?.Add(ev);
        }
    }

    /// <summary>Positions this node sent to the other nodes' maps and received from theirs (null when not a cluster node).</summary>
    public (long Sent, long Received)? ClusterPositions => _positions is { } p ? (p.Sent, p.Received) : null;

    // Shows a position on the map, or takes a signed-off vehicle off it; false when the event is neither.
    private bool ShowVehicle(in VehicleEvent ev, TimeSpan shift)
    {
        if (VehicleState.FromEvent(ev, shift) is { } state)
        {
            _live.PublishVehicle(state);
            return true;
        }

        if (ev.Type is EventType.Vjout or EventType.Dout && !string.IsNullOrEmpty(ev.VehicleId))
        {
            // Signed off: the vehicle leaves the map now rather than after the silence timeout.
            _live.RemoveVehicle(ev.VehicleId);
            return true;
        }

        return false;
    }

    // Another node's positions: shown here too (counted by that node's source, not this one's).
    private void ShowRemote(VehicleEvent[] events)
    {
        foreach (var e in events)
        {
            ShowVehicle(e, TimeSpan.Zero);
        }
    }

    /// <summary>
    /// A GTFS-RT snapshot enters the pipeline: its vehicle positions as position events, its trip updates (with
    /// cancellations and skipped stops) to tracking's trip board. Returns the number of position events.
    /// </summary>
    /// <param name="feed">The decoded snapshot.</param>
    /// <param name="receiveTime">When it arrived, UTC.</param>
    /// <param name="source">The source, for its counters.</param>
    /// <param name="publishPositions">False to track the positions without showing them (a replay shows its HFP
    /// vehicles, and the feed's copies of them would be duplicates).</param>
    public int IngestGtfsRt(FeedMessage feed, DateTime receiveTime, SourceStatus source, bool publishPositions = true)
    {
        ArgumentNullException.ThrowIfNull(feed);
        ArgumentNullException.ThrowIfNull(source);
        var items = Normalize(feed, receiveTime, source, publishPositions, out var positions);
        if (Tracking)
        {
            foreach (var item in items)
            {
                Write(item);
            }
        }

        return positions;
    }

    // A snapshot's positions (published, counted on the source) and trip updates, as tracking items (none without
    // tracking); the drain counts them when they go in.
    private List<TrackingInput> Normalize(FeedMessage feed, DateTime receiveTime, SourceStatus source, bool publishPositions) =>
        Normalize(feed, receiveTime, source, publishPositions, out _);

    private List<TrackingInput> Normalize(FeedMessage feed, DateTime receiveTime, SourceStatus source, bool publishPositions, out int positions)
    {
        var events = new List<VehicleEvent>();
        GtfsRtNormalizer.Normalize(feed, receiveTime, _matcher, events);
        var items = new List<TrackingInput>(Tracking ? events.Count : 0);
        positions = 0;
        foreach (var e in events)
        {
            if (e.Type == EventType.TripUpdateStop)
            {
                continue;
            }

            if (Tracking && Accept(e, 0) is { } item)
            {
                items.Add(item);
            }

            if (publishPositions)
            {
                Publish(e, source);
            }

            positions++;
        }

        if (Tracking)
        {
            foreach (var u in GtfsRtStopUpdates.Extract(feed, receiveTime, _matcher))
            {
                items.Add(TrackingInput.Of(u));
            }
        }

        return items;
    }

    /// <summary>
    /// Puts the clock in now, and waits until everything handed to tracking so far was tracked and what the partitions
    /// derived was published (starts the tracking stream when <see cref="RunAsync"/> has not).
    /// </summary>
    public void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>See <see cref="Flush"/>.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (_partitions is null)
        {
            return;
        }

        await StartAsync(cancellationToken).ConfigureAwait(false);
        if (StreamClock is { } clock)
        {
            await _input.Writer.WriteAsync(TrackingInput.OfClock(clock), cancellationToken).ConfigureAwait(false);
            _ = Counted(default);
        }

        await WhenDrainedAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Tracking's instruments (events, queue, clock; the drop counters come from <c>TrackingMetrics</c>).</summary>
    public void CreateInstruments(Meter meter)
    {
        ArgumentNullException.ThrowIfNull(meter);
        if (_partitions is null)
        {
            return;
        }

        meter.Counter("fleet_tracking_events_total", "Live events tracked (applied by the partitions).", () => Stream?.Journaled ?? 0);
        meter.Counter("fleet_tracking_batch_retries_total", "Batches sent again because their partition did not acknowledge in time (its node died; cluster only).", () => Stream?.Retries ?? 0);
        meter.Counter("fleet_tracking_repeated_batches_total", "Batches a partition answered as already applied (a retry whose first send had been applied: not applied twice).", () => Stream?.Repeated ?? 0);
        meter.Counter("fleet_cluster_positions_sent_total", "Positions this node's sources received and sent to the other nodes' maps (cluster only).", () => ClusterPositions?.Sent ?? 0);
        meter.Counter("fleet_cluster_positions_received_total", "Positions received from the other nodes' sources for this node's map (cluster only).", () => ClusterPositions?.Received ?? 0);
        meter.Counter("fleet_cluster_results_total", "Partition results this node took from the cluster's topic (every node's partitions; cluster only).", () => Stream?.TopicBatches ?? 0);
        meter.Counter("fleet_cluster_results_dropped_total", "Partition results from the cluster's topic dropped because this node's live state was behind by more than its buffer.", () => Stream?.TopicDropped ?? 0);
        meter.Gauge("fleet_tracking_queued_events", $"Live events handed to tracking and not yet tracked and published (at {MaxQueued} waiting in the channel the looping sources wait: backpressure).",
            () => Math.Max(0, Interlocked.Read(ref _accepted) - (Stream?.Published ?? 0)));
        meter.OptionalGauge("fleet_tracking_clock_lag_seconds", "Wall clock minus tracking's event-time stream clock.",
            () => StreamClock is { } clock ? (_time.GetUtcNow().UtcDateTime - clock).TotalSeconds : null);
    }

    /// <summary>
    /// Runs the pipeline until cancelled: starts the partitions and the tracking stream (the looping callers' channel
    /// read into it), the clock tick (every <see cref="PartitionTracking.ClockEvery"/>) and, on a cluster, the
    /// positions shared with the other nodes (every <see cref="FlushInterval"/>). Then what was handed in is tracked
    /// and published, and the stream completes.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (_partitions is null)
        {
            return;
        }

        try
        {
            await StartAsync(cancellationToken).ConfigureAwait(false);
            if (_cluster is { Options.Clustered: true } cluster)
            {
                var positions = new PositionFeed(await cluster.GetSystemAsync().WaitAsync(cancellationToken).ConfigureAwait(false), ShowRemote);
                await positions.Subscribed.WaitAsync(cancellationToken).ConfigureAwait(false);
                _positions = positions;
            }

            var system = await _cluster!.GetSystemAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
            var stream = _partitions.Stream!;
            _ticks = Source.Tick(FlushInterval, FlushInterval, NotUsed.Instance)
                .ViaMaterialized(KillSwitches.Single<NotUsed>(), Keep.Right)
                .SelectMany(_ => Tick())
                .To(stream.Input)
                .Run(system.Materializer());
            _started.TrySetResult();
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            _ticks?.Shutdown();
            _input.Writer.TryComplete();
            if (_partitions.Stream is not null)
            {
                // Bounded: a stream that failed publishes nothing more.
                using var drain = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                try
                {
                    await WhenDrainedAsync(drain.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (drain.IsCancellationRequested)
                {
                    LogNotDrained(Interlocked.Read(ref _accepted) - _partitions.Stream.Published);
                }
            }

            _positions?.Flush();
            _positions?.Dispose();
            try
            {
                await _partitions.DisposeAsync().ConfigureAwait(false);
            }
            catch (AbruptTerminationException ex)
            {
                // The actor system stopped first (the host is shutting down): nothing left to complete.
                LogStreamTerminated(ex.Message);
            }
        }
    }

    // Every FlushInterval: positions to the other nodes; every ClockEvery, the stream clock (so quiet vehicles go
    // stale) and the late-drop log line.
    private IEnumerable<TrackingInput> Tick()
    {
        _positions?.Flush();
        var partitions = _partitions!;
        var now = _time.GetTimestamp();
        if (partitions.LastClock != 0 && _time.GetElapsedTime(partitions.LastClock, now) < PartitionTracking.ClockEvery)
        {
            return [];
        }

        partitions.LastClock = now;
        if (partitions.Stream is { } stream)
        {
            var late = stream.Drops.Late;
            if (late > _lateLogged && (_lateLoggedAt == 0 || _time.GetElapsedTime(_lateLoggedAt, now) >= LateLogInterval))
            {
                LogLateDropped(late - _lateLogged, _tolerance.TotalSeconds, _lateness.TotalSeconds, late);
                _lateLogged = late;
                _lateLoggedAt = now;
            }
        }

        if (StreamClock is not { } clock)
        {
            return [];
        }

        return [Counted(TrackingInput.OfClock(clock))];
    }

    // Starts the partitions' region and the tracking stream once, with the looping callers' channel read into it.
    private async Task StartAsync(CancellationToken cancellationToken)
    {
        var partitions = _partitions!;
        if (await partitions.StartAsync(cancellationToken).ConfigureAwait(false) is { } stream)
        {
            var system = await _cluster!.GetSystemAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
            ChannelSource.FromReader(_input.Reader).To(stream.Input).Run(system.Materializer());
            // Once tracking's stream has ended (stopped, or failed), nothing waits on the channel: a writer gets the
            // reason instead of waiting for ever.
            _ = stream.Completion.ContinueWith(
                t => _input.Writer.TryComplete(t.Exception?.GetBaseException() ?? new InvalidOperationException("tracking's stream has ended")),
                CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    private TrackingStream StartedStream() =>
        _partitions?.Stream ?? throw new InvalidOperationException("the live pipeline has not started: await Started first");

    // Waits until the stream published everything accepted so far (or ended: then nothing more will be).
    private async Task WhenDrainedAsync(CancellationToken cancellationToken)
    {
        var stream = _partitions!.Stream!;
        while (stream.Published < Interlocked.Read(ref _accepted) && !stream.Completion.IsCompleted)
        {
            await Task.Delay(2, cancellationToken).ConfigureAwait(false);
        }
    }

    // A loop-reading caller's item: into the channel, waiting while it is full (backpressure); counted once in.
    private void Write(TrackingInput item)
    {
        if (!_input.Writer.TryWrite(item))
        {
            _input.Writer.WriteAsync(item).AsTask().GetAwaiter().GetResult();
        }

        _ = Counted(item);
    }

    // An item on its way into tracking's stream (the channel took it, or the next stage is the hub): the drain waits
    // until the stream has published as many. Counted only once it cannot be lost on the way.
    private TrackingInput Counted(TrackingInput item)
    {
        Interlocked.Increment(ref _accepted);
        return item;
    }

    // An event for tracking: live sources' events take the event-time stream clock as their
    // receive time (tracking's clock is the newest receive time it was given). Null when tracking has no use for it.
    private TrackingInput? Accept(in VehicleEvent ev, long sequence)
    {
        var copy = ev;
        if (copy.IngestTimestamp == 0)
        {
            copy.IngestTimestamp = _time.GetTimestamp();
        }

        if (_clock is not null)
        {
            lock (_clockGate)
            {
                copy.ReceiveTime = _clock.Observe(ev.EventTime);
            }
        }

        return TrackingInput.Of(copy, sequence);
    }

    [LoggerMessage(EventId = 5052, Level = LogLevel.Information, Message = "Tracking's stream ended with the actor system: {Reason}")]
    private partial void LogStreamTerminated(string reason);

    [LoggerMessage(EventId = 5051, Level = LogLevel.Warning, Message = "Tracking stopped with {Count} items not tracked after 30 s of draining")]
    private partial void LogNotDrained(long count);

    [LoggerMessage(EventId = 5050, Level = LogLevel.Warning,
        Message = "Tracking dropped {Count} late events (behind their vehicle's newest tracked event by more than the {ToleranceSeconds} s late tolerance, after a {LatenessSeconds} s reorder window); {Total} in all (fleet_tracking_late_events_total)")]
    private partial void LogLateDropped(long count, double toleranceSeconds, double latenessSeconds, long total);
}

#pragma warning restore CA1001

/// <summary>A live pipeline's tracking on the node's Akka.NET partitions: the region and the stream into it, once started.</summary>
internal sealed class PartitionTracking(TrackingCluster cluster, string region, GtfsTripCatalog catalog, TrackingOptions options, ITrackingOutput output, IArrivalPredictor predictor) : IAsyncDisposable
{
    /// <summary>The region of the live sources' partitions (a replay's are <c>vehicle-partition</c>, per round).</summary>
    public const string RegionName = "live-partition";

    /// <summary>How often the stream clock is offered when events carry it anyway (each clock reaches every partition).</summary>
    public static readonly TimeSpan ClockEvery = TimeSpan.FromSeconds(1);

    private readonly SemaphoreSlim _start = new(1, 1);

    /// <summary>The stream, once <see cref="StartAsync"/> ran.</summary>
    public TrackingStream? Stream { get; private set; }

    /// <summary>When the clock was last offered (timestamp), 0 before.</summary>
    public long LastClock { get; set; }

    /// <summary>Starts the partitions' region on the node and the stream into it (once); returns the stream when this
    /// call started it, null when it ran already.</summary>
    public async Task<TrackingStream?> StartAsync(CancellationToken cancellationToken)
    {
        await _start.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Stream is not null)
            {
                return null;
            }

            var system = await cluster.GetSystemAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
            var started = await FleetAkka.StartRegionAsync(system, cluster.Options with { Region = region }, new TrackingDomain(catalog, options, predictor)).ConfigureAwait(false);
            var stream = TrackingStream.Start(system, started, cluster.Options.Partitions, new NetworkTracker(options, catalog, predictor), output, predictor as IStopObserver,
                FleetAkka.StreamOptions(cluster.Options, region));
            // On a cluster, results come through the partitions' topic: subscribed before the first batch goes out.
            await stream.Subscribed.WaitAsync(cancellationToken).ConfigureAwait(false);
            Stream = stream;
            return stream;
        }
        finally
        {
            _start.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Stream is { } stream)
        {
            // The stream stays set (and completed): a later offer fails with "closed" instead of waiting for a start.
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }
}
