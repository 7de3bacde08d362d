using Fleet.Ingest.Events;
using Fleet.Tracking.Network;
using Fleet.Tracking.Output;
using Fleet.Tracking.Partitions;
using Fleet.Tracking.Schedule;
using Fleet.Tracking.Vehicles;

namespace Fleet.Tracking.Replay;

/// <summary>Counters of a <see cref="TrackingEngine"/> run.</summary>
/// <param name="Events">Events posted.</param>
/// <param name="StopUpdates">GTFS-RT stop time updates among them.</param>
/// <param name="Vehicles">Distinct vehicles.</param>
/// <param name="Late">Events dropped as late (behind their vehicle's newest tracked event by more than the tolerance).</param>
/// <param name="Duplicates">Duplicates dropped.</param>
/// <param name="UnmatchedJourneys">Journeys the schedule did not know.</param>
/// <param name="Derived">Derived events published (every type).</param>
/// <param name="Corrected">Late events within the late tolerance, tracked in the newest event's place.</param>
public readonly record struct TrackingCounters(long Events, long StopUpdates, int Vehicles, long Late, long Duplicates, long UnmatchedJourneys, long Derived, long Corrected = 0);

/// <summary>
/// Tracks a stream of events in parallel and deterministically: the batch engine behind
/// <c>fleet replay --out-events</c> and the tracking benchmark.
/// </summary>
/// <remarks>
/// <para><b>Sharding.</b> Vehicles are split over <c>partitions</c> by a stable hash of their id; each partition
/// owns its <see cref="VehicleTracker"/>s and runs on its own thread, so a vehicle's events are processed in the
/// order they were posted, on one thread.</para>
/// <para><b>Determinism.</b> Input is cut into batches by count (not by time or thread timing). After each batch
/// every partition has finished; the batch's derived events are sorted by <see cref="DerivedEventOrder"/>, fed in
/// that order to the single-threaded <see cref="NetworkTracker"/> (after the batch's GTFS-RT updates, in input
/// order), and everything is published sorted. Neither the number of partitions nor scheduling can change the
/// output: two runs over the same input give the same events in the same order. A predictor that learns from
/// arrivals (<see cref="IStopObserver"/>) is fed the published events in that sorted order, between batches, so
/// what it has learnt when a vehicle asks is fixed by the input and the batch size too.</para>
/// <para><b>Clock.</b> The stream clock is the newest receive time posted (event time when a source has none); it
/// releases held events and drives staleness. Nothing reads the wall clock.</para>
/// <para>Not thread-safe: one producer calls <c>Post</c> and <see cref="Complete"/>. <see cref="Counters"/> alone
/// may be read from any thread (a status line while the replay runs).</para>
/// </remarks>
public sealed class TrackingEngine
{
    private readonly TrackingOptions _options;
    private readonly ITrackingOutput _output;
    private readonly IStopObserver? _observer;
    private readonly Partition[] _partitions;
    private List<StopUpdate> _updates = [];
    private List<StopUpdate> _runningUpdates = [];
    private Task? _running;
    private readonly List<DerivedEvent> _merged = [];
    private readonly ListOutput _networkOut = new();
    private readonly int _batchSize;
    private int _inBatch;
    private DateTime _clock;
    private long _events;
    private long _stopUpdates;
    private long _derived;
    // Immutable snapshot of the counters, replaced after each published batch (a reference: read without tearing).
    private PublishedCounters _published = new(default);

    /// <summary>Creates an engine.</summary>
    /// <param name="catalog">The schedule.</param>
    /// <param name="options">Thresholds.</param>
    /// <param name="output">Receives every derived event, sorted per batch.</param>
    /// <param name="partitions">Parallel partitions (default: processor count).</param>
    /// <param name="batchSize">Events per batch.</param>
    /// <param name="predictor">Optional arrival predictor.</param>
    public TrackingEngine(ITripCatalog catalog, TrackingOptions options, ITrackingOutput output, int partitions = 0,
        int batchSize = 32_768, IArrivalPredictor? predictor = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfNegative(partitions);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        options.Validate();
        _options = options;
        _output = output;
        _observer = predictor as IStopObserver;
        _batchSize = batchSize;
        _partitions = new Partition[partitions == 0 ? Environment.ProcessorCount : partitions];
        for (var i = 0; i < _partitions.Length; i++)
        {
            _partitions[i] = new Partition(new VehiclePartition(catalog, options, predictor));
        }

        Network = new NetworkTracker(options, catalog);
    }

    /// <summary>The cross-vehicle stage: trip board, stop board, aggregates.</summary>
    public NetworkTracker Network { get; }

    /// <summary>
    /// The counters: events and stop updates as posted, the trackers' figures (vehicles, late, duplicates, unmatched
    /// journeys) and derived events as of the last batch whose output was published. Safe to read from any thread at
    /// any time, also while an overlapped batch runs (<see cref="OverlapBatches"/>); after <see cref="Complete"/> or
    /// <see cref="RunBatch()"/> they are exact.
    /// </summary>
    public TrackingCounters Counters
    {
        get
        {
            var published = Volatile.Read(ref _published).Value;
            return published with { Events = Volatile.Read(ref _events), StopUpdates = Volatile.Read(ref _stopUpdates) };
        }
    }

    /// <summary>Posts one event; runs a batch when enough are queued.</summary>
    public void Post(in VehicleEvent e)
    {
        Volatile.Write(ref _events, _events + 1);
        var clock = e.ReceiveTime != default ? e.ReceiveTime : e.EventTime;
        if (clock > _clock)
        {
            _clock = clock;
        }

        if (e.Type == EventType.TripUpdateStop)
        {
            if (e.TripId is not null)
            {
                Volatile.Write(ref _stopUpdates, _stopUpdates + 1);
                _updates.Add(StopUpdates.From(e));
            }
        }
        else if (!string.IsNullOrEmpty(e.VehicleId))
        {
            _partitions[PartitionOf(e.VehicleId, _partitions.Length)].Queue.Add(e);
        }

        if (++_inBatch >= _batchSize)
        {
            RunBatch(final: false, overlap: OverlapBatches);
        }
    }

    /// <summary>Posts a GTFS-RT stop update (with its cancelled/skipped status) for the trip board.</summary>
    public void Post(in StopUpdate update)
    {
        Volatile.Write(ref _stopUpdates, _stopUpdates + 1);
        _updates.Add(update);
        if (++_inBatch >= _batchSize)
        {
            RunBatch(final: false, overlap: OverlapBatches);
        }
    }

    /// <summary>
    /// Moves the stream clock to <paramref name="streamTime"/> when that is later (a live source that tracks in event
    /// time moves it while no event comes); the next batch releases held events and checks staleness against it.
    /// </summary>
    public void AdvanceClock(DateTime streamTime)
    {
        if (streamTime > _clock)
        {
            _clock = streamTime;
        }
    }

    /// <summary>Processes everything queued and flushes every vehicle (end of stream).</summary>
    public void Complete() => RunBatch(final: true, overlap: false);

    /// <summary>Runs the queued batch now (e.g. on a timer in live use); output stays deterministic for a given cut.</summary>
    public void RunBatch() => RunBatch(final: false, overlap: false);

    /// <summary>
    /// When true, a batch cut by <c>Post</c> runs its partitions in the background while the producer goes on posting
    /// the next batch (its network stage and publishing happen at the next cut, in the same order as without
    /// overlap, so the output is the same). <see cref="Counters"/> may be read at any time; <see cref="Network"/> only
    /// after <see cref="Complete"/> or <see cref="RunBatch()"/>. Default false.
    /// </summary>
    public bool OverlapBatches { get; init; }

    /// <summary>The partition of a vehicle id (see <see cref="VehiclePartition.PartitionOf"/>).</summary>
    public static int PartitionOf(string vehicleId, int partitions) => VehiclePartition.PartitionOf(vehicleId, partitions);

    private void RunBatch(bool final, bool overlap)
    {
        _inBatch = 0;
        FinishRunning();
        var clock = _clock;
        foreach (var p in _partitions)
        {
            (p.Queue, p.Running) = (p.Running, p.Queue);
        }

        (_updates, _runningUpdates) = (_runningUpdates, _updates);
        if (overlap && !final)
        {
            _running = _partitions.Length == 1
                ? Task.Run(() => _partitions[0].Run(clock, final: false))
                : Task.Run(() => Parallel.ForEach(_partitions, p => p.Run(clock, final: false)));
            return;
        }

        if (_partitions.Length == 1)
        {
            _partitions[0].Run(clock, final);
        }
        else
        {
            Parallel.ForEach(_partitions, p => p.Run(clock, final));
        }

        PublishBatch();
    }

    // Waits for the batch running in the background (if any), then runs its network stage and publishes it.
    private void FinishRunning()
    {
        if (_running is not { } running)
        {
            return;
        }

        _running = null;
        running.GetAwaiter().GetResult();
        PublishBatch();
    }

    private void PublishBatch()
    {
        _merged.Clear();
        foreach (var p in _partitions)
        {
            _merged.AddRange(p.Output.Events);
            p.Output.Events.Clear();
        }

        _merged.Sort(DerivedEventOrder.Instance);
        _networkOut.Events.Clear();
        foreach (var u in _runningUpdates)
        {
            Network.OnStopUpdate(u, _networkOut);
        }

        Network.OnStopUpdatesDone(_networkOut);
        _runningUpdates.Clear();
        foreach (var d in _merged)
        {
            Network.OnDerived(d, _networkOut);
        }

        if (_networkOut.Events.Count > 0)
        {
            _merged.AddRange(_networkOut.Events);
            _merged.Sort(DerivedEventOrder.Instance);
        }

        foreach (var d in _merged)
        {
            _observer?.Observe(d);
            _output.Publish(d);
        }

        _derived += _merged.Count;
        _merged.Clear();
        PublishCounters();
    }

    // Runs on the producer thread when no partition runs (after the batch finished): sums the partitions' trackers.
    private void PublishCounters()
    {
        long late = 0, duplicates = 0, unmatched = 0, corrected = 0;
        var vehicles = 0;
        foreach (var p in _partitions)
        {
            vehicles += p.Trackers.Count;
            foreach (var t in p.Trackers.Values)
            {
                late += t.LateEvents;
                duplicates += t.DuplicateEvents;
                corrected += t.CorrectedEvents;
                unmatched += t.UnmatchedJourneys;
            }
        }

        Volatile.Write(ref _published, new PublishedCounters(new TrackingCounters(0, 0, vehicles, late, duplicates, unmatched, _derived, corrected)));
    }

    private sealed record PublishedCounters(TrackingCounters Value);

    // One VehiclePartition and the engine's double-buffered queue in front of it.
    private sealed class Partition(VehiclePartition vehicles)
    {
        public List<VehicleEvent> Queue { get; set; } = [];

        public List<VehicleEvent> Running { get; set; } = [];

        public VehiclePartition Vehicles { get; } = vehicles;

        public Dictionary<string, VehicleTracker> Trackers => Vehicles.Trackers;

        public ListOutput Output { get; } = new();

        public void Run(DateTime clock, bool final)
        {
            Vehicles.Track(Running, null, clock, Output, final);
            Running.Clear();
        }
    }
}
