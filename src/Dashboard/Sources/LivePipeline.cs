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
/// arrivals, alerts, predictions) when serve has a GTFS network, whose derived events reach the live state through
/// <see cref="LiveTrackingOutput"/>. GTFS-RT snapshots are handled here too: vehicle positions become position
/// events, trip updates go to tracking's trip board (cancelled trips and skipped stops included).
/// </summary>
/// <remarks>
/// <para>One instance serves the live sources (every MQTT broker and GTFS-RT feed together); a replay makes its own
/// per pass, because tracking runs in event time, which starts over with every pass.</para>
/// <para><b>Clock.</b> Tracking judges lateness and staleness by its stream clock. A replay's pipeline uses the
/// recording's receive times. The live sources' pipeline (<c>followEventTime</c>) uses event time instead of the
/// wall-clock receive time: the clock is the newest event time seen (never more than
/// <see cref="MaxClockAhead"/> past the wall clock, so one vehicle with a clock in the future cannot make the others
/// late), and when every source has been silent for longer than the lateness window it moves on with the wall clock,
/// so vehicles of a feed that stopped still go stale. A recording published to a broker (<c>fleet replay --to
/// mqtt://</c>, old timestamps) is therefore tracked like the live feed it was. An event is late when it is older
/// than what its own vehicle has already had tracked (beyond the late tolerance): it is dropped, counted
/// (<c>fleet_tracking_late_events_total</c>) and logged (event 5050), never silently. The clock only releases held
/// events and drives staleness, so a recording and a live feed served together are both tracked.</para>
/// <para><b>Latency.</b> Live tracking holds nothing by default (<see cref="TrackingOptions.Live"/>: lateness zero,
/// a 2 s late tolerance), so a report is tracked when it arrives. With the flush loop running
/// (<see cref="RunFlushLoopAsync"/>, the live sources' pipeline), an event wakes the loop at once: it runs
/// tracking's batch on everything queued meanwhile, so batches are small when the load is light and grow with it.
/// Without the loop (a replay's pipeline), a batch runs inline every <see cref="FlushInterval"/>.</para>
/// <para>Thread-safety: every member may be called concurrently (the tracking engine is single-producer, so
/// calls into it are serialized under one lock; publishing to <see cref="LiveEvents"/> never blocks).</para>
/// </remarks>
#pragma warning disable CA1001 // _wake: a SemaphoreSlim whose wait handle is never used owns nothing to dispose.
public sealed partial class LivePipeline : IMetricsContributor
{
    /// <summary>Events queued for tracking beyond which the source runs the batch itself (backpressure).</summary>
    public const int MaxQueued = 65_536;

    /// <summary>How often queued events leave tracking (derived events are batched). Short, so that predictions do
    /// not wait for it and reach the hub in small bursts rather than one a second.</summary>
    public static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(100);

    private readonly LiveEvents _live;
    /// <summary>How far past the wall clock an event time may move the event-time stream clock.</summary>
    public static readonly TimeSpan MaxClockAhead = TimeSpan.FromSeconds(5);

    // Late drops are logged at most this often (with the count since the last line); the metric counts each one.
    private static readonly TimeSpan LateLogInterval = TimeSpan.FromSeconds(10);

    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly bool _followEventTime;
    private readonly TimeSpan _lateness;
    private readonly TimeSpan _tolerance;
    private readonly Func<TimeSpan>? _shift;
    // Set when an event is queued and the loop has not been woken for it yet; the loop clears it before a batch.
    private readonly SemaphoreSlim _wake = new(0, 1);
    private int _wakePending;
    private volatile bool _loopRunning;
    private readonly TrackingEngine? _engine;
    private readonly TripMatcher? _matcher;
    // With a store: tracking runs on the Akka.NET partitions (region "live-partition") through a TrackingStream instead
    // of the in-process engine; the stream is started by the flush loop.
    private readonly PersistedTracking? _persisted;
    // _gate: the engine (one batch at a time). _queueGate: the events queued for the next batch and the clock; held
    // only briefly, so a source never waits for a batch to finish (unless the queue is full: backpressure).
    private readonly Lock _gate = new();
    private readonly Lock _queueGate = new();
    private readonly List<VehicleEvent> _rt = [];
    private List<VehicleEvent> _queued = [];
    private List<VehicleEvent> _draining = [];
    private List<StopUpdate> _queuedUpdates = [];
    private List<StopUpdate> _drainingUpdates = [];
    private long _lastFlush;
    private DateTime _newestEvent;
    private long _newestAt;
    private long _lateLogged;
    private long _lateLoggedAt;

    /// <summary>Creates a pipeline.</summary>
    /// <param name="live">Where vehicle states, predictions and alerts go.</param>
    /// <param name="network">The GTFS network; without one (or with another kind) events skip tracking.</param>
    /// <param name="time">Clock for the inline flush.</param>
    /// <param name="catalog">The trip catalog to track against (built from <paramref name="network"/> when null).</param>
    /// <param name="shift">Added to every published time (a replay shown as live); none when null.</param>
    /// <param name="predictor">Arrival predictor for tracking (delay carried forward when null).</param>
    /// <param name="output">Where tracking's derived events go (a <see cref="LiveTrackingOutput"/> on
    /// <paramref name="live"/> when null; the hub benchmark wraps it to stamp ingest times).</param>
    /// <param name="followEventTime">True for live sources: tracking's clock follows event time (see remarks), not
    /// the events' receive time.</param>
    /// <param name="logger">Where dropped late events are reported (event 5050).</param>
    /// <param name="options">Tracking's thresholds; <see cref="TrackingOptions.Live"/> when null.</param>
    /// <param name="cluster">With a store (<c>fleet serve --store</c>): tracking runs on the Akka.NET partitions of this
    /// node, journaled, instead of in-process (needs <see cref="RunFlushLoopAsync"/>).</param>
    public LivePipeline(LiveEvents live, ITransitNetwork? network, TimeProvider time, GtfsTripCatalog? catalog = null,
        Func<TimeSpan>? shift = null, IArrivalPredictor? predictor = null, ITrackingOutput? output = null,
        bool followEventTime = false, ILogger? logger = null, TrackingOptions? options = null, TrackingCluster? cluster = null)
    {
        ArgumentNullException.ThrowIfNull(live);
        ArgumentNullException.ThrowIfNull(time);
        _live = live;
        _time = time;
        _shift = shift;
        _followEventTime = followEventTime;
        _logger = logger ?? NullLogger.Instance;
        _lastFlush = time.GetTimestamp();
        options ??= TrackingOptions.Live();
        options.Validate();
        _lateness = options.Lateness;
        _tolerance = options.LateTolerance;
        if ((network as GtfsNetwork)?.Schedule is { } schedule)
        {
            catalog ??= new GtfsTripCatalog(schedule);
            _matcher = new TripMatcher(schedule);
            if (cluster is not null)
            {
                _persisted = new PersistedTracking(cluster, catalog, options, output ?? new LiveTrackingOutput(live, shift), predictor ?? new DelayCarriedForwardPredictor());
            }
            else
            {
                _engine = new TrackingEngine(catalog, options, output ?? new LiveTrackingOutput(live, shift), partitions: 1,
                    predictor: predictor ?? new DelayCarriedForwardPredictor());
            }
        }
    }

    /// <summary>With a store: what the live sources' partitions dropped or corrected; null otherwise.</summary>
    public Fleet.Tracking.Partitions.TrackingDrops? PersistedDrops => _persisted?.Stream?.Drops;

    /// <summary>True when events go through tracking (serve has a GTFS network).</summary>
    public bool Tracking => _engine is not null || _persisted is not null;

    /// <summary>Tracking's counters (see <see cref="TrackingEngine.Counters"/>), or null without tracking.</summary>
    public TrackingCounters? Counters => _engine?.Counters;

    /// <summary>The event-time stream clock (see remarks), or null before the first event or without
    /// <c>followEventTime</c>.</summary>
    public DateTime? StreamClock
    {
        get
        {
            lock (_queueGate)
            {
                return _followEventTime && _newestEvent != default ? EventClock(_time.GetTimestamp()) : null;
            }
        }
    }

    /// <summary>An event enters the pipeline: tracked, then published as the vehicle's state.</summary>
    public void Ingest(in VehicleEvent ev, SourceStatus source)
    {
        Track(ev);
        Publish(ev, source);
    }

    /// <summary>Hands an event to tracking only (a paced replay tracks before it waits, and publishes after).</summary>
    public void Track(in VehicleEvent ev)
    {
        if (!Tracking)
        {
            return;
        }

        int queued;
        lock (_queueGate)
        {
            PostEvent(ev);
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
        if (VehicleState.FromEvent(ev, shift) is { } state)
        {
            _live.PublishVehicle(state);
        }
        else if (ev.Type is EventType.Vjout or EventType.Dout && !string.IsNullOrEmpty(ev.VehicleId))
        {
            // Signed off: the vehicle leaves the map now rather than after the silence timeout.
            _live.RemoveVehicle(ev.VehicleId);
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
                    PostEvent(e);
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

    /// <summary>Runs tracking's queued batch now (a timer calls this so a quiet source still moves the clock).</summary>
    public void Flush()
    {
        if (_persisted is not null)
        {
            // A source whose queue is full waits here until the partitions took the queued events (backpressure).
            FlushToPartitionsAsync(CancellationToken.None).GetAwaiter().GetResult();
            return;
        }

        if (_engine is null)
        {
            return;
        }

        lock (_gate)
        {
            _lastFlush = _time.GetTimestamp();
            RunBatch(_lastFlush);
        }
    }

    /// <summary>Tracking's instruments (events, late and duplicate events dropped, unmatched journeys, queue, clock).</summary>
    public void CreateInstruments(Meter meter)
    {
        ArgumentNullException.ThrowIfNull(meter);
        if (_engine is null)
        {
            if (_persisted is not null)
            {
                meter.CreateObservableGauge("fleet_tracking_live_stream_pending", () => _persisted.Stream is { } s ? [new Measurement<long>(s.Pending)] : Array.Empty<Measurement<long>>(),
                    description: "Live events offered to the partitions' stream and not yet tracked and published (with --store).");
            }

            return;
        }

        meter.Counter("fleet_tracking_events_total", "Live events tracked.", () => _engine.Counters.Events);
        meter.Counter("fleet_tracking_late_events_total", "Live events dropped by tracking: behind their vehicle's newest tracked event by more than the late tolerance.", () => _engine.Counters.Late);
        meter.Counter("fleet_tracking_corrected_events_total", "Live events that came after a newer one of their vehicle, within the late tolerance, tracked in its place.", () => _engine.Counters.Corrected);
        meter.Counter("fleet_tracking_duplicate_events_total", "Live events dropped by tracking as exact duplicates.", () => _engine.Counters.Duplicates);
        meter.Counter("fleet_tracking_unmatched_journeys_total", "Journeys of live events the schedule did not know.", () => _engine.Counters.UnmatchedJourneys);
        meter.Gauge("fleet_tracking_queued_events", $"Live events waiting for tracking's next batch (at {MaxQueued} the sources run it themselves: backpressure).", () =>
        {
            lock (_queueGate)
            {
                return _queued.Count + _queuedUpdates.Count;
            }
        });
        meter.OptionalGauge("fleet_tracking_clock_lag_seconds", "Wall clock minus tracking's event-time stream clock.",
            () => StreamClock is { } clock ? (_time.GetUtcNow().UtcDateTime - clock).TotalSeconds : null);
    }

    /// <summary>
    /// Runs <see cref="Flush"/> whenever events were queued (at once: woken by them), and at least every
    /// <see cref="FlushInterval"/> so the clock moves while no event comes; until cancelled.
    /// </summary>
    public async Task RunFlushLoopAsync(CancellationToken cancellationToken)
    {
        if (!Tracking)
        {
            return;
        }

        if (_persisted is not null)
        {
            await _persisted.StartAsync(cancellationToken).ConfigureAwait(false);
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

                if (_persisted is not null)
                {
                    await FlushToPartitionsAsync(cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    Flush();
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            _loopRunning = false;
            if (_persisted is not null)
            {
                // What was queued goes in, then the stream drains: everything offered is tracked and published.
                await FlushToPartitionsAsync(CancellationToken.None).ConfigureAwait(false);
                await _persisted.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    // With a store: hands what the sources queued to the partitions' stream (waits while it is full), and the stream
    // clock every second so quiet vehicles go stale. One caller at a time (the loop, or a source whose queue is full).
    private async Task FlushToPartitionsAsync(CancellationToken cancellationToken)
    {
        var persisted = _persisted!;
        await persisted.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (persisted.Stream is not { } stream)
            {
                return; // not started yet: the events stay queued until the loop has started the stream
            }

            var now = _time.GetTimestamp();
            var clock = TakeQueued(now);

            foreach (var e in _draining)
            {
                await stream.OfferAsync(e, 0, cancellationToken).ConfigureAwait(false);
            }

            foreach (var u in _drainingUpdates)
            {
                await stream.OfferAsync(u, cancellationToken).ConfigureAwait(false);
            }

            _draining.Clear();
            _drainingUpdates.Clear();
            if (clock is { } c && (persisted.LastClock == 0 || _time.GetElapsedTime(persisted.LastClock, now) >= PersistedTracking.ClockEvery))
            {
                persisted.LastClock = now;
                await stream.OfferClockAsync(c, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            persisted.Gate.Release();
        }
    }

    // After events were queued: with the loop, wakes it (once per batch), or runs the batch here when the queue is
    // full; without it, runs the batch when FlushInterval has passed.
    private void AfterQueued(int queued)
    {
        if (_loopRunning)
        {
            if (queued >= MaxQueued)
            {
                Flush();
            }
            else if (Interlocked.Exchange(ref _wakePending, 1) == 0)
            {
                _wake.Release();
            }

            return;
        }

        if (_persisted is not null)
        {
            return; // the loop has not started yet: it takes what is queued when it does
        }

        lock (_gate)
        {
            var now = _time.GetTimestamp();
            if (_time.GetElapsedTime(_lastFlush, now) >= FlushInterval)
            {
                _lastFlush = now;
                RunBatch(now);
            }
        }
    }

    // Called under _queueGate: queues the event for tracking. Live sources: with the event-time stream clock as its
    // receive time (the engine's clock is the newest receive time it was given).
    private void PostEvent(in VehicleEvent ev)
    {
        var now = _time.GetTimestamp();
        if (!_followEventTime)
        {
            _queued.Add(ev);
            if (ev.IngestTimestamp == 0)
            {
                CollectionsMarshal.AsSpan(_queued)[^1].IngestTimestamp = now;
            }

            return;
        }

        var t = ev.EventTime;
        var cap = _time.GetUtcNow().UtcDateTime + MaxClockAhead;
        if (t > cap)
        {
            t = cap;
        }

        if (t > _newestEvent)
        {
            _newestEvent = t;
            _newestAt = now;
        }

        var copy = ev;
        copy.ReceiveTime = EventClock(now);
        if (copy.IngestTimestamp == 0)
        {
            copy.IngestTimestamp = now;
        }

        _queued.Add(copy);
    }

    // Called under _queueGate: the newest event time, moved on with the wall clock once the sources have been silent for
    // longer than the lateness window (events within the window may still come; after it nothing holds the clock).
    private DateTime EventClock(long now)
    {
        var idle = _time.GetElapsedTime(_newestAt, now) - _lateness;
        return idle > TimeSpan.Zero ? _newestEvent + idle : _newestEvent;
    }

    // Moves what the sources queued into the draining lists (one flush at a time owns them); returns the event-time
    // stream clock for live sources, null otherwise.
    private DateTime? TakeQueued(long now)
    {
        lock (_queueGate)
        {
            (_queued, _draining) = (_draining, _queued);
            (_queuedUpdates, _drainingUpdates) = (_drainingUpdates, _queuedUpdates);
            return _followEventTime && _newestEvent != default ? EventClock(now) : null;
        }
    }

    // Called under _gate: runs tracking's batch on what was queued, keeps its counters for readers and reports late
    // drops.
    private void RunBatch(long now)
    {
        var engine = _engine!;
        var clock = TakeQueued(now);

        foreach (var e in _draining)
        {
            engine.Post(e);
        }

        foreach (var u in _drainingUpdates)
        {
            engine.Post(u);
        }

        _draining.Clear();
        _drainingUpdates.Clear();
        if (clock is { } c)
        {
            engine.AdvanceClock(c);
        }

        engine.RunBatch();
        var late = engine.Counters.Late;
        if (late > _lateLogged && (_lateLoggedAt == 0 || _time.GetElapsedTime(_lateLoggedAt, now) >= LateLogInterval))
        {
            LogLateDropped(late - _lateLogged, _tolerance.TotalSeconds, _lateness.TotalSeconds, late);
            _lateLogged = late;
            _lateLoggedAt = now;
        }
    }

    [LoggerMessage(EventId = 5050, Level = LogLevel.Warning,
        Message = "Tracking dropped {Count} late events (behind their vehicle's newest tracked event by more than the {ToleranceSeconds} s late tolerance, after a {LatenessSeconds} s reorder window); {Total} in all (fleet_tracking_late_events_total)")]
    private partial void LogLateDropped(long count, double toleranceSeconds, double latenessSeconds, long total);
}
#pragma warning restore CA1001

/// <summary>A live pipeline's tracking on the Akka.NET partitions (with a store): the stream, once started.</summary>
internal sealed class PersistedTracking(TrackingCluster cluster, GtfsTripCatalog catalog, TrackingOptions options, ITrackingOutput output, IArrivalPredictor predictor) : IAsyncDisposable
{
    /// <summary>The region of the live sources' partitions (a replay's are <c>vehicle-partition</c>, per round).</summary>
    public const string RegionName = "live-partition";

    /// <summary>How often the stream clock is offered when events carry it anyway (each clock reaches every partition).</summary>
    public static readonly TimeSpan ClockEvery = TimeSpan.FromSeconds(1);

    /// <summary>One flush at a time (the stream takes one offer at a time).</summary>
    public SemaphoreSlim Gate { get; } = new(1, 1);

    /// <summary>The stream, once <see cref="StartAsync"/> ran.</summary>
    public TrackingStream? Stream { get; private set; }

    /// <summary>When the clock was last offered (timestamp), 0 before.</summary>
    public long LastClock { get; set; }

    /// <summary>Starts the partitions' region on the node and the stream into it.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var system = await cluster.GetSystemAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        var region = await FleetAkka.StartRegionAsync(system, cluster.Options with { Region = RegionName }, new TrackingDomain(catalog, options, predictor)).ConfigureAwait(false);
        Stream = TrackingStream.Start(system, region, cluster.Options.Partitions, new NetworkTracker(options, catalog), output, predictor as IStopObserver);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Stream is { } stream)
        {
            Stream = null;
            await stream.DisposeAsync().ConfigureAwait(false);
        }

        Gate.Dispose();
    }
}
