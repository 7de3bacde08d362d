using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Live;

/// <summary>Reaches one connected client (the SignalR hub in production, a recorder in tests).</summary>
public interface ILiveTransport
{
    /// <summary>The client <paramref name="clientId"/>; each of its calls completes when the transport accepted the
    /// message (a slow client makes this slow).</summary>
    public ILiveClient Client(string clientId);
}

/// <summary>
/// The in-process fan-out between the pipeline and the people watching: keeps the latest vehicle states,
/// predictions and alerts, and pushes what changed to each subscribed client: vehicles at most once per
/// <see cref="LiveOptions.BatchInterval"/>, predictions and alerts as soon as they are published.
/// </summary>
/// <remarks>
/// <para><b>Producers</b> (the replay, the MQTT and GTFS-RT sources, tracking through <see cref="LiveTrackingOutput"/>)
/// call <see cref="PublishVehicle"/>, <see cref="PublishPrediction"/> and <see cref="PublishAlert"/>. These never
/// block and never wait for a client: they replace the latest value in a dictionary and add its key to a change set.</para>
/// <para><b>Two lanes per client.</b> The vehicle lane (<see cref="RunAsync"/>) wakes every <see cref="LiveOptions.Tick"/>,
/// adds each changed vehicle to the pending set of the clients whose subscriptions match (found through an index by
/// stop, route and vehicle id, boxes checked one by one), and sends a client its batch once its interval has passed.
/// The prediction lane is woken by each published prediction or alert and pushes them at once (what arrives while a
/// push is being built or written follows in the next one), never waiting for the vehicle batch. Each lane has at most one push in
/// flight per client. A client whose previous push is still being written (a slow client) just keeps accumulating
/// keys; since keys are coalesced and values are read when the push is built, it later gets the latest state and has
/// missed the intermediate ones (counted per client and in <see cref="LiveMetrics.MissedBatches"/>). Nothing a client
/// does can slow ingest or another client.</para>
/// <para><b>Bounds</b>: vehicles, predictions, alerts, subscriptions per client, pending keys per client and items
/// per message are all capped by <see cref="LiveOptions"/>; anything refused is counted in <see cref="Metrics"/>. So a
/// client that stops reading holds at most <see cref="LiveOptions.MaxPendingPerClient"/> keys and one message per lane
/// on the server (SignalR's pipe applies backpressure beyond its buffer), and is disconnected once a push has been
/// stuck for <see cref="LiveOptions.SlowClientTimeout"/>.</para>
/// <para><b>Where it lives</b>: the live state and its producers and queries here; the prediction rounds and their
/// withdrawals in LiveEvents.Rounds.cs; connections and subscriptions in LiveEvents.Clients.cs (the index they build:
/// <see cref="SubscriptionIndex"/>; one client's queues: <see cref="LiveConnection"/>); the two push lanes in
/// LiveEvents.Push.cs.</para>
/// <para><b>Lock order</b>: <c>_urgentGate</c>, then <c>_indexGate</c>, then <c>_roundGate</c>, then <c>_changeGate</c>,
/// then one client's <c>Gate</c>. <c>_changeGate</c> and a client's <c>Gate</c> are innermost and never held together,
/// and a client's <c>Gate</c> is never taken inside another's; <c>_urgentMonitor</c> (the prediction lane's wake-up)
/// is never held with another lock, and every <see cref="Signal"/> runs after its lock is released. Observed nestings:
/// <c>_roundGate</c> -> <c>_changeGate</c> (withdrawals), <c>_urgentGate</c> -> <c>_changeGate</c> and
/// <c>_urgentGate</c> -> a client's <c>Gate</c> (the prediction lane), <c>_indexGate</c> -> a client's <c>Gate</c>
/// (rebuilding the index). The prediction store and the rounds are checked against each other by
/// <see cref="CheckRounds"/>.</para>
/// <para>Thread-safety: every public member is thread-safe.</para>
/// </remarks>
public sealed partial class LiveEvents
{
    private readonly LiveOptions _options;
    private readonly ILiveTransport _transport;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    private readonly ConcurrentDictionary<string, VehicleEntry> _vehicles = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, ArrivalPrediction>> _predictionsByStop = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, LiveAlert> _alerts = new(StringComparer.Ordinal);
    private int _predictionCount;

    // Change sets, swapped with their spares by the flush loop under _changeGate. A HashSet coalesces repeated
    // updates of one key between two ticks, so the work per tick is bounded by the number of distinct keys.
    private readonly Lock _changeGate = new();
    private HashSet<string> _changedVehicles = new(StringComparer.Ordinal);
    private HashSet<string> _spareVehicles = new(StringComparer.Ordinal);
    private Dictionary<string, VehicleState> _removedVehicles = new(StringComparer.Ordinal);
    private Dictionary<string, VehicleState> _spareRemoved = new(StringComparer.Ordinal);
    private HashSet<PredictionKey> _changedPredictions = [];
    private HashSet<PredictionKey> _sparePredictions = [];
    private HashSet<string> _changedAlerts = new(StringComparer.Ordinal);
    private HashSet<string> _spareAlerts = new(StringComparer.Ordinal);

    private readonly ConcurrentDictionary<string, LiveConnection> _clients = new(StringComparer.Ordinal);
    private readonly Lock _indexGate = new();
    private volatile SubscriptionIndex _index = SubscriptionIndex.Empty;

    // The prediction lane: woken (at most once per pass) by a published prediction or alert.
    private readonly object _urgentMonitor = new();
    private int _urgentSignaled;
    private readonly Lock _urgentGate = new();
    private readonly HashSet<LiveConnection> _touched = [];
    private long _latestEventTicks;
    private long _lastExpiry;

    /// <summary>Creates the fan-out.</summary>
    public LiveEvents(LiveOptions options, ILiveTransport transport, TimeProvider time, ILogger<LiveEvents> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        _options = options;
        _transport = transport;
        _time = time;
        _logger = logger;
        Metrics = new LiveMetrics(time);
    }

    /// <summary>Counters for <c>/metrics</c> and <c>/api/health</c>.</summary>
    public LiveMetrics Metrics { get; }

    /// <summary>Number of vehicles currently known.</summary>
    public int VehicleCount => _vehicles.Count;

    /// <summary>Number of predictions currently kept.</summary>
    public int PredictionCount => Volatile.Read(ref _predictionCount);

    /// <summary>Number of connected clients.</summary>
    public int ClientCount => _clients.Count;

    /// <summary>Ids of the connected clients (hub connection ids).</summary>
    public IReadOnlyList<string> ClientIds => [.. _clients.Keys];

    /// <summary>The newest event time published so far (UTC: a vehicle's position, a prediction round, an observed
    /// arrival), or null before the first.</summary>
    public DateTime? LatestEventTime
    {
        get
        {
            var ticks = Interlocked.Read(ref _latestEventTicks);
            return ticks == 0 ? null : new DateTime(ticks, DateTimeKind.Utc);
        }
    }

    // ---- producers ------------------------------------------------------------------------------------------

    /// <summary>Replaces the state of a vehicle. Never blocks. Returns false when refused (vehicle limit).</summary>
    public bool PublishVehicle(VehicleState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var entry = new VehicleEntry(state, _time.GetTimestamp());
        if (!_vehicles.TryGetValue(state.Id, out var previous))
        {
            if (_vehicles.Count >= _options.MaxVehicles)
            {
                Metrics.CountRejected(RejectReason.VehicleLimit);
                return false;
            }
        }
        else if (previous.State == state)
        {
            // Push on change only: an identical report changes nothing a client can see.
            Metrics.CountVehicleUpdate();
            return true;
        }

        _vehicles[state.Id] = entry;
        AdvanceEventTime(state.Updated);
        Metrics.CountVehicleUpdate();
        lock (_changeGate)
        {
            _changedVehicles.Add(state.Id);
        }

        return true;
    }

    /// <summary>Removes a vehicle (signed off, or gone quiet); subscribed clients are told.</summary>
    public bool RemoveVehicle(string vehicleId)
    {
        ArgumentNullException.ThrowIfNull(vehicleId);
        if (!_vehicles.TryRemove(vehicleId, out var removed))
        {
            return false;
        }

        lock (_changeGate)
        {
            _changedVehicles.Remove(vehicleId);
            _removedVehicles[vehicleId] = removed.State;
        }

        WithdrawVehicle(vehicleId, WithdrawReason.VehicleGone, LatestEventTime ?? removed.State.Updated);
        return true;
    }

    /// <summary>
    /// Replaces the prediction of one trip at one stop. Never blocks. Returns false when refused. A prediction that
    /// says the same as the one held (<see cref="ArrivalPrediction.SameAs"/>) changes nothing and is not pushed.
    /// Tracking publishes whole rounds through <see cref="PublishRound"/>; this is for a single prediction.
    /// </summary>
    public bool PublishPrediction(ArrivalPrediction prediction)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        bool accepted, push;
        lock (_roundGate)
        {
            accepted = PublishLocked(prediction, prediction.Updated.Ticks, out push);
        }

        if (push)
        {
            QueueChanged(prediction);
        }

        return accepted;
    }

    /// <summary>
    /// Publishes a vehicle's whole prediction round at once and ends it (<see cref="EndRound"/>): readers see the old
    /// round or the new one, never a mix (a stop board, the GTFS-RT feed). Every prediction is the vehicle's, made at
    /// <paramref name="roundTime"/>. Returns how many were refused (limit).
    /// </summary>
    public int PublishRound(string vehicleId, string? tripId, DateTime roundTime, IReadOnlyList<ArrivalPrediction> predictions)
    {
        ArgumentNullException.ThrowIfNull(vehicleId);
        ArgumentNullException.ThrowIfNull(predictions);
        // A round is made at an event time too (a vehicle tracked from TripUpdates alone publishes no positions).
        AdvanceEventTime(roundTime);
        var refused = 0;
        List<ArrivalPrediction>? changed = null;
        bool withdrew;
        lock (_roundGate)
        {
            foreach (var p in predictions)
            {
                if (!PublishLocked(p, roundTime.Ticks, out var push))
                {
                    refused++;
                }
                else if (push)
                {
                    (changed ??= []).Add(p);
                }
            }

            withdrew = EndRoundLocked(vehicleId, tripId, roundTime);
        }

        if (changed is not null)
        {
            foreach (var p in changed)
            {
                QueueChanged(p);
            }
        }
        else if (withdrew)
        {
            Signal();
        }

        return refused;
    }

    // Stores one prediction (under _roundGate). Returns false when refused; push: a client may want it.
    private bool PublishLocked(ArrivalPrediction prediction, long stamp, out bool push)
    {
        push = false;
        if (prediction.VehicleId is { } vehicleId && _rounds.TryGetValue(vehicleId, out var round) &&
            round.HasPassed(prediction.TripId, prediction.StopSequence))
        {
            // Made before an arrival that was published first (the batch engine orders by time, and an arrival
            // detected from positions is dated back to when it happened): the vehicle is already past the stop.
            Metrics.CountUnchangedPrediction();
            return true;
        }

        var byTrip = _predictionsByStop.GetOrAdd(prediction.StopId, static _ => new ConcurrentDictionary<string, ArrivalPrediction>(StringComparer.Ordinal));
        if (byTrip.TryGetValue(prediction.TripId, out var previous))
        {
            if (previous.SameAs(prediction))
            {
                // Said again by a newer round: it survives that round's end, but nothing is pushed.
                var again = previous with { Updated = prediction.Updated };
                byTrip[prediction.TripId] = again;
                Track(again, previous, stamp);
                Metrics.CountUnchangedPrediction();
                return true;
            }

            byTrip[prediction.TripId] = prediction;
        }
        else
        {
            if (Volatile.Read(ref _predictionCount) >= _options.MaxPredictions)
            {
                Metrics.CountRejected(RejectReason.PredictionLimit);
                return false;
            }

            byTrip[prediction.TripId] = prediction;
            Interlocked.Increment(ref _predictionCount);
        }

        Track(prediction, previous, stamp);
        _withdrawn.TryRemove(new PredictionKey(prediction.StopId, prediction.TripId), out _);
        Metrics.CountPrediction();
        push = true;
        return true;
    }

    // A stored prediction is queued for the clients that follow it, if any.
    private void QueueChanged(ArrivalPrediction prediction)
    {
        // Stored first, then the index read (a full fence between): a subscription added meanwhile either is in the
        // index read here, or reads this prediction in its initial view (Subscribe updates the index, then reads).
        // No subscriber for it: nothing to push (the API and later initial views read the store).
        Interlocked.MemoryBarrier();
        if (!_index.WantsPrediction(prediction))
        {
            return;
        }

        lock (_changeGate)
        {
            _changedPredictions.Add(new PredictionKey(prediction.StopId, prediction.TripId));
        }

        Signal();
    }

    /// <summary>Withdraws the prediction of a trip at a stop (the vehicle has reached it); its followers are told.</summary>
    public bool RemovePrediction(string stopId, string tripId)
    {
        ArgumentNullException.ThrowIfNull(stopId);
        ArgumentNullException.ThrowIfNull(tripId);
        var removed = false;
        var signal = false;
        lock (_roundGate)
        {
            if (_predictionsByStop.TryGetValue(stopId, out var byTrip) && byTrip.TryGetValue(tripId, out var p))
            {
                removed = true;
                signal = WithdrawLocked(new PredictionKey(stopId, tripId), p, WithdrawReason.Passed, LatestEventTime ?? p.Updated);
            }
        }

        if (signal)
        {
            Signal();
        }

        return removed;
    }

    /// <summary>Adds or replaces an alert (same <see cref="LiveAlert.Id"/>); a cleared one is pushed so clients drop
    /// it, and is then forgotten after <see cref="LiveOptions.AlertTtl"/>. The oldest goes beyond the limit.</summary>
    public void PublishAlert(LiveAlert alert)
    {
        ArgumentNullException.ThrowIfNull(alert);
        _alerts[alert.Id] = alert;
        if (_alerts.Count > _options.MaxAlerts)
        {
            var oldest = _alerts.Values.MinBy(a => a.Time);
            if (oldest is not null && oldest.Id != alert.Id)
            {
                _alerts.TryRemove(oldest.Id, out _);
                Metrics.CountRejected(RejectReason.AlertLimit);
            }
        }

        lock (_changeGate)
        {
            _changedAlerts.Add(alert.Id);
        }

        Signal();
    }

    // ---- queries --------------------------------------------------------------------------------------------

    /// <summary>Every known vehicle (a snapshot).</summary>
    public IReadOnlyList<VehicleState> Vehicles() => [.. _vehicles.Values.Select(e => e.State)];

    /// <summary>One vehicle, or null.</summary>
    public VehicleState? Vehicle(string id) => _vehicles.TryGetValue(id, out var e) ? e.State : null;

    /// <summary>Predictions at one stop, soonest first.</summary>
    public IReadOnlyList<ArrivalPrediction> PredictionsAt(string stopId)
    {
        ArgumentNullException.ThrowIfNull(stopId);
        ArrivalPrediction[] held;
        lock (_roundGate)
        {
            // Under the round lock: a round is seen whole or not at all.
            held = _predictionsByStop.TryGetValue(stopId, out var byTrip) ? [.. byTrip.Values] : [];
        }

        Array.Sort(held, static (a, b) => a.Predicted.CompareTo(b.Predicted));
        return held;
    }

    /// <summary>Every prediction (a snapshot), for the GTFS-RT feed.</summary>
    public IReadOnlyList<ArrivalPrediction> AllPredictions()
    {
        lock (_roundGate)
        {
            // Under the round lock: every round is seen whole (the GTFS-RT feed's times never go back along a trip).
            return [.. _predictionsByStop.Values.SelectMany(t => t.Values)];
        }
    }

    /// <summary>Current (not cleared) alerts, newest first.</summary>
    public IReadOnlyList<LiveAlert> Alerts() => [.. _alerts.Values.Where(a => !a.Cleared).OrderByDescending(a => a.Time)];
}
