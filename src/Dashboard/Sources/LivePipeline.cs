using Fleet.Dashboard.Hosting;
using Fleet.Dashboard.Live;
using Fleet.Gtfs.Realtime;
using Fleet.Ingest.Events;
using Fleet.Tracking;
using Fleet.Tracking.Output;
using Fleet.Tracking.Replay;
using Fleet.Tracking.Schedule;
using Fleet.Tracking.Vehicles;
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
/// <para>One instance serves the live sources (every MQTT broker and GTFS-RT feed together, in wall-clock time);
/// a replay makes its own per pass, because tracking runs in event time, which starts over with every pass.</para>
/// <para>Thread-safety: every member may be called concurrently (the tracking engine is single-producer, so
/// calls into it are serialized under one lock; publishing to <see cref="LiveEvents"/> never blocks).</para>
/// </remarks>
public sealed class LivePipeline
{
    /// <summary>How often queued events leave tracking (derived events are batched). Short, so that predictions do
    /// not wait for it and reach the hub in small bursts rather than one a second.</summary>
    public static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(100);

    private readonly LiveEvents _live;
    private readonly TimeProvider _time;
    private readonly Func<TimeSpan>? _shift;
    private readonly TrackingEngine? _engine;
    private readonly TripMatcher? _matcher;
    private readonly Lock _gate = new();
    private readonly List<VehicleEvent> _rt = [];
    private long _lastFlush;

    /// <summary>Creates a pipeline.</summary>
    /// <param name="live">Where vehicle states, predictions and alerts go.</param>
    /// <param name="network">The GTFS network; without one (or with another kind) events skip tracking.</param>
    /// <param name="time">Clock for the inline flush.</param>
    /// <param name="catalog">The trip catalog to track against (built from <paramref name="network"/> when null).</param>
    /// <param name="shift">Added to every published time (a replay shown as live); none when null.</param>
    /// <param name="predictor">Arrival predictor for tracking (delay carried forward when null).</param>
    /// <param name="output">Where tracking's derived events go (a <see cref="LiveTrackingOutput"/> on
    /// <paramref name="live"/> when null; the hub benchmark wraps it to stamp ingest times).</param>
    public LivePipeline(LiveEvents live, ITransitNetwork? network, TimeProvider time, GtfsTripCatalog? catalog = null,
        Func<TimeSpan>? shift = null, IArrivalPredictor? predictor = null, ITrackingOutput? output = null)
    {
        ArgumentNullException.ThrowIfNull(live);
        ArgumentNullException.ThrowIfNull(time);
        _live = live;
        _time = time;
        _shift = shift;
        _lastFlush = time.GetTimestamp();
        if ((network as GtfsNetwork)?.Schedule is { } schedule)
        {
            catalog ??= new GtfsTripCatalog(schedule);
            _matcher = new TripMatcher(schedule);
            _engine = new TrackingEngine(catalog, new TrackingOptions(), output ?? new LiveTrackingOutput(live, shift), partitions: 1,
                predictor: predictor ?? new DelayCarriedForwardPredictor());
        }
    }

    /// <summary>True when events go through tracking (serve has a GTFS network).</summary>
    public bool Tracking => _engine is not null;

    /// <summary>Tracking's counters, or null without tracking.</summary>
    public TrackingCounters? Counters
    {
        get
        {
            lock (_gate)
            {
                return _engine?.Counters;
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
        if (_engine is null)
        {
            return;
        }

        lock (_gate)
        {
            _engine.Post(ev);
            FlushIfDue();
        }
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
        lock (_gate)
        {
            _rt.Clear();
            GtfsRtNormalizer.Normalize(feed, receiveTime, _matcher, _rt);
            foreach (var e in _rt)
            {
                if (e.Type == EventType.TripUpdateStop)
                {
                    continue;
                }

                _engine?.Post(e);
                if (publishPositions)
                {
                    Publish(e, source);
                }

                positions++;
            }

            if (_engine is not null)
            {
                foreach (var u in GtfsRtStopUpdates.Extract(feed, receiveTime, _matcher))
                {
                    _engine.Post(u);
                }

                FlushIfDue();
            }
        }

        return positions;
    }

    /// <summary>Runs tracking's queued batch now (a timer calls this so a quiet source still moves the clock).</summary>
    public void Flush()
    {
        if (_engine is null)
        {
            return;
        }

        lock (_gate)
        {
            _lastFlush = _time.GetTimestamp();
            _engine.RunBatch();
        }
    }

    /// <summary>Runs <see cref="Flush"/> every <see cref="FlushInterval"/> until cancelled.</summary>
    public async Task RunFlushLoopAsync(CancellationToken cancellationToken)
    {
        if (_engine is null)
        {
            return;
        }

        using var timer = new PeriodicTimer(FlushInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                Flush();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    // Called under _gate. Derived events leave tracking in batches, every FlushInterval.
    private void FlushIfDue()
    {
        var now = _time.GetTimestamp();
        if (_time.GetElapsedTime(_lastFlush, now) >= FlushInterval)
        {
            _lastFlush = now;
            _engine!.RunBatch();
        }
    }
}
