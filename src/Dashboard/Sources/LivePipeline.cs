using Fleet.Actors.Streams;
using Fleet.Actors.Partitions;
using Fleet.Actors.Hosting;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
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
/// <para><b>Clock.</b> Tracking judges lateness and staleness by its stream clock. The live sources' pipeline
/// (<c>followEventTime</c>) uses event time (<see cref="EventTimeClock"/>) instead of the wall-clock receive time. An
/// event is late when it is older than what its own vehicle has already had tracked (beyond the late tolerance): it
/// is dropped and counted (<c>fleet_tracking_late_events_total</c>), never silently.</para>
/// <para><b>Latency and backpressure.</b> Live tracking holds nothing by default (<see cref="TrackingOptions.Live"/>:
/// lateness zero, a 2 s late tolerance). The flush loop (<see cref="RunFlushLoopAsync"/>) is woken by each event and
/// offers what was queued meanwhile to the stream, which cuts it into batches per partition (GroupedWithin) and waits
/// for each batch's acknowledgement; the clock is offered at least every second so quiet vehicles go stale. When the
/// stream is full the offers wait, the queue fills, and at <see cref="MaxQueued"/> a source offers itself and waits:
/// overload slows the sources, never grows memory (<c>fleet_tracking_queued_events</c>).</para>
/// <para>Thread-safety: every member may be called concurrently (sources queue under a short lock; one flush at a time
/// offers to the stream; publishing to <see cref="LiveEvents"/> never blocks).</para>
/// </remarks>
#pragma warning disable CA1001 // _wake: a SemaphoreSlim whose wait handle is never used owns nothing to dispose.
public sealed partial class LivePipeline : IMetricsContributor
{
    /// <summary>Events queued for tracking beyond which the source offers them itself and waits (backpressure).</summary>
    public const int MaxQueued = 65_536;

    /// <summary>How often the flush loop runs when no event wakes it (the clock moves while sources are quiet).</summary>
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
    private readonly EventTimeClock? _clock;
    // Set when an event is queued and the loop has not been woken for it yet; the loop clears it before a flush.
    private readonly SemaphoreSlim _wake = new(0, 1);
    private int _wakePending;
    private volatile bool _loopRunning;
    private readonly TripMatcher? _matcher;
    // Tracking on the node's partitions; null without a GTFS network (events are only published).
    private readonly PartitionTracking? _partitions;
    private readonly TrackingCluster? _cluster;
    // On a multi-node cluster: positions shared with the other nodes' maps (set once the flush loop runs).
    private volatile PositionFeed? _positions;
    // _queueGate: the events queued for the next flush and the clock; held only briefly, so a source never waits for a
    // flush (unless the queue is full: backpressure).
    private readonly Lock _queueGate = new();
    private readonly List<VehicleEvent> _rt = [];
    private List<VehicleEvent> _queued = [];
    private List<VehicleEvent> _draining = [];
    // Each queued event's source sequence number (0: none), in step with _queued.
    private List<long> _queuedSequences = [];
    private List<long> _drainingSequences = [];
    private List<StopUpdate> _queuedUpdates = [];
    private List<StopUpdate> _drainingUpdates = [];

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
    }

    /// <summary>The stream into the partitions, once started (null without tracking or before).</summary>
    public TrackingStream? Stream => _partitions?.Stream;

    /// <summary>What the live sources' partitions dropped or corrected; null without tracking.</summary>
    public TrackingDrops? Drops => _partitions?.Stream?.Drops;

    /// <summary>True when events go through tracking (serve has a GTFS network).</summary>
    public bool Tracking => _partitions is not null;

    /// <summary>The event-time stream clock, or null before the first event or without <c>followEventTime</c>.</summary>
    public DateTime? StreamClock
    {
        get
        {
            lock (_queueGate)
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

    /// <summary>Hands an event to tracking only.</summary>
    public void Track(in VehicleEvent ev, long sequence = 0)
    {
        if (!Tracking)
        {
            return;
        }

        int queued;
        lock (_queueGate)
        {
            PostEvent(ev, sequence);
            queued = _queued.Count;
        }

        AfterQueued(queued);
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
        var positions = 0;
        var queued = 0;
        lock (_queueGate)
        {
            _rt.Clear();
            GtfsRtNormalizer.Normalize(feed, receiveTime, _matcher, _rt);
            foreach (var e in _rt)
            {
                if (e.Type == EventType.TripUpdateStop)
                {
                    continue;
                }

                if (Tracking)
                {
                    PostEvent(e, 0);
                }

                if (publishPositions)
                {
                    Publish(e, source);
                }

                positions++;
            }

            if (Tracking)
            {
                _queuedUpdates.AddRange(GtfsRtStopUpdates.Extract(feed, receiveTime, _matcher));
                queued = _queued.Count + _queuedUpdates.Count;
            }
        }

        if (Tracking)
        {
            AfterQueued(queued);
        }

        return positions;
    }

    /// <summary>
    /// Offers what is queued and the clock to the partitions now, and waits until they tracked it and the sink
    /// published what they derived (starts the stream when the loop has not).
    /// </summary>
    public void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>See <see cref="Flush"/>.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (_partitions is null)
        {
            return;
        }

        await _partitions.StartAsync(cancellationToken).ConfigureAwait(false);
        await OfferQueuedAsync(forceClock: true, cancellationToken).ConfigureAwait(false);
        await _partitions.Stream!.WhenDrainedAsync(cancellationToken).ConfigureAwait(false);
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
        meter.Gauge("fleet_tracking_queued_events", $"Live events waiting for tracking: queued for the stream, and in it until published (at {MaxQueued} queued the sources wait: backpressure).", () =>
        {
            lock (_queueGate)
            {
                return _queued.Count + _queuedUpdates.Count + (Stream?.Pending ?? 0);
            }
        });
        meter.OptionalGauge("fleet_tracking_clock_lag_seconds", "Wall clock minus tracking's event-time stream clock.",
            () => StreamClock is { } clock ? (_time.GetUtcNow().UtcDateTime - clock).TotalSeconds : null);
    }

    /// <summary>
    /// Starts the stream into the partitions, then offers what was queued whenever events were (at once: woken by
    /// them), and at least every <see cref="FlushInterval"/> so the clock moves while no event comes; until cancelled.
    /// Then what was queued goes in and the stream drains: everything offered is tracked and published.
    /// </summary>
    public async Task RunFlushLoopAsync(CancellationToken cancellationToken)
    {
        if (_partitions is null)
        {
            return;
        }

        await _partitions.StartAsync(cancellationToken).ConfigureAwait(false);
        if (_cluster is { Options.Clustered: true } cluster)
        {
            var positions = new PositionFeed(await cluster.GetSystemAsync().WaitAsync(cancellationToken).ConfigureAwait(false), ShowRemote);
            await positions.Subscribed.WaitAsync(cancellationToken).ConfigureAwait(false);
            _positions = positions;
        }

        _loopRunning = true;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                // Woken by events, or the interval (real time). The pending flag is cleared only with the release it
                // stands for taken: cleared after a timeout, a release made just then would be followed by a second one
                // (SemaphoreFullException in the source that queued).
                if (await _wake.WaitAsync(FlushInterval, cancellationToken).ConfigureAwait(false))
                {
                    Volatile.Write(ref _wakePending, 0);
                }

                await OfferQueuedAsync(forceClock: false, cancellationToken).ConfigureAwait(false);
                _positions?.Flush();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            _loopRunning = false;
            await OfferQueuedAsync(forceClock: false, CancellationToken.None).ConfigureAwait(false);
            _positions?.Flush();
            _positions?.Dispose();
            await _partitions.DisposeAsync().ConfigureAwait(false);
        }
    }

    // Hands what the sources queued to the partitions' stream (waits while it is full), and the stream clock every
    // second (or now, when forced) so quiet vehicles go stale. One caller at a time (the loop, a flush, or a source
    // whose queue is full).
    private async Task OfferQueuedAsync(bool forceClock, CancellationToken cancellationToken)
    {
        var partitions = _partitions!;
        await partitions.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (partitions.Stream is not { } stream)
            {
                return; // not started yet (or stopped): the events stay queued until the stream starts
            }

            DateTime? clock;
            lock (_queueGate)
            {
                (_queued, _draining) = (_draining, _queued);
                (_queuedSequences, _drainingSequences) = (_drainingSequences, _queuedSequences);
                (_queuedUpdates, _drainingUpdates) = (_drainingUpdates, _queuedUpdates);
                clock = _clock?.Now;
            }

            for (var i = 0; i < _draining.Count; i++)
            {
                await stream.OfferAsync(_draining[i], _drainingSequences[i], cancellationToken).ConfigureAwait(false);
            }

            foreach (var u in _drainingUpdates)
            {
                await stream.OfferAsync(u, cancellationToken).ConfigureAwait(false);
            }

            _draining.Clear();
            _drainingSequences.Clear();
            _drainingUpdates.Clear();
            var now = _time.GetTimestamp();
            if (clock is { } c && (forceClock || partitions.LastClock == 0 || _time.GetElapsedTime(partitions.LastClock, now) >= PartitionTracking.ClockEvery))
            {
                partitions.LastClock = now;
                await stream.OfferClockAsync(c, cancellationToken).ConfigureAwait(false);
            }

            var late = stream.Drops.Late;
            if (late > _lateLogged && (_lateLoggedAt == 0 || _time.GetElapsedTime(_lateLoggedAt, now) >= LateLogInterval))
            {
                LogLateDropped(late - _lateLogged, _tolerance.TotalSeconds, _lateness.TotalSeconds, late);
                _lateLogged = late;
                _lateLoggedAt = now;
            }
        }
        finally
        {
            partitions.Gate.Release();
        }
    }

    // After events were queued: wakes the loop (once per flush), or offers here when the queue is full (the source
    // waits: backpressure). Before the loop runs, events stay queued.
    private void AfterQueued(int queued)
    {
        if (!_loopRunning)
        {
            return;
        }

        if (queued >= MaxQueued)
        {
            OfferQueuedAsync(forceClock: false, CancellationToken.None).GetAwaiter().GetResult();
        }
        else if (Interlocked.Exchange(ref _wakePending, 1) == 0)
        {
            _wake.Release();
        }
    }

    // Called under _queueGate: queues the event for tracking. Live sources: with the event-time stream clock as its
    // receive time (tracking's clock is the newest receive time it was given).
    private void PostEvent(in VehicleEvent ev, long sequence)
    {
        var copy = ev;
        if (copy.IngestTimestamp == 0)
        {
            copy.IngestTimestamp = _time.GetTimestamp();
        }

        if (_clock is not null)
        {
            copy.ReceiveTime = _clock.Observe(ev.EventTime);
        }

        _queued.Add(copy);
        _queuedSequences.Add(sequence);
    }

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

    /// <summary>One offer at a time (the stream takes one producer at a time).</summary>
    public SemaphoreSlim Gate { get; } = new(1, 1);

    /// <summary>The stream, once <see cref="StartAsync"/> ran.</summary>
    public TrackingStream? Stream { get; private set; }

    /// <summary>When the clock was last offered (timestamp), 0 before.</summary>
    public long LastClock { get; set; }

    /// <summary>Starts the partitions' region on the node and the stream into it (once).</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _start.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Stream is not null)
            {
                return;
            }

            var system = await cluster.GetSystemAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
            var started = await FleetAkka.StartRegionAsync(system, cluster.Options with { Region = region }, new TrackingDomain(catalog, options, predictor)).ConfigureAwait(false);
            var stream = TrackingStream.Start(system, started, cluster.Options.Partitions, new NetworkTracker(options, catalog), output, predictor as IStopObserver,
                FleetAkka.StreamOptions(cluster.Options, region));
            // On a cluster, results come through the partitions' topic: subscribed before the first batch goes out.
            await stream.Subscribed.WaitAsync(cancellationToken).ConfigureAwait(false);
            Stream = stream;
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
