using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Live;

/// <summary>Sends one pushed message to one connected client (the SignalR hub in production, a fake in tests).</summary>
public interface ILiveTransport
{
    /// <summary>Sends <paramref name="payload"/> as <paramref name="method"/> to client <paramref name="clientId"/>;
    /// completes when the transport accepted it (a slow client makes this slow).</summary>
    public Task SendAsync(string clientId, string method, object payload, CancellationToken cancellationToken);
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

    private readonly ConcurrentDictionary<string, LiveClient> _clients = new(StringComparer.Ordinal);
    private readonly Lock _indexGate = new();
    private volatile SubscriptionIndex _index = SubscriptionIndex.Empty;

    // The prediction lane: woken (at most once per pass) by a published prediction or alert.
    private readonly object _urgentMonitor = new();
    private int _urgentSignaled;
    private readonly Lock _urgentGate = new();
    private readonly HashSet<LiveClient> _touched = [];
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

    // ---- clients --------------------------------------------------------------------------------------------

    /// <summary>Registers a client (a hub connection). Pushes start after its first subscription.</summary>
    /// <param name="clientId">The connection id.</param>
    /// <param name="abort">Closes the connection; called once when one of its pushes has not completed within
    /// <see cref="LiveOptions.SlowClientTimeout"/> (a client that stopped reading). Null: never closed.</param>
    public void Connect(string clientId, Action? abort = null)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        _clients.TryAdd(clientId, new LiveClient(clientId, abort));
        Metrics.Clients = _clients.Count;
    }

    /// <summary>Forgets a client.</summary>
    public void Disconnect(string clientId)
    {
        if (_clients.TryRemove(clientId, out _))
        {
            RebuildIndex();
        }

        Metrics.Clients = _clients.Count;
    }

    /// <summary>
    /// Adds a subscription. Everything it matches now is queued for the client's next push (its initial view);
    /// afterwards only changes are pushed. Throws <see cref="ArgumentException"/> on an invalid or excess one.
    /// </summary>
    public void Subscribe(string clientId, Subscription subscription)
    {
        var client = _clients.TryGetValue(clientId, out var c) ? c : throw new ArgumentException($"unknown client '{clientId}'", nameof(clientId));
        lock (client.Gate)
        {
            if (!client.Subscriptions.Contains(subscription))
            {
                if (client.Subscriptions.Count >= _options.MaxSubscriptionsPerClient)
                {
                    throw new ArgumentException($"at most {_options.MaxSubscriptionsPerClient} subscriptions per connection");
                }

                client.Add(subscription);
            }
        }

        // The index first, then the initial view: a change published before the index has it is in the state the
        // view reads; one published after is distributed through the index.
        RebuildIndex();
        Interlocked.MemoryBarrier();
        lock (client.Gate)
        {
            var single = new LiveClient.Filter(subscription);
            foreach (var (id, entry) in _vehicles)
            {
                if (single.Matches(entry.State))
                {
                    client.QueueVehicle(id, _options.MaxPendingPerClient, Metrics);
                }
            }

            foreach (var (stopId, byTrip) in _predictionsByStop)
            {
                foreach (var p in byTrip.Values)
                {
                    if (single.Matches(p))
                    {
                        client.QueuePrediction(new PredictionKey(stopId, p.TripId), _options.MaxPendingPerClient, Metrics);
                    }
                }
            }

            foreach (var a in _alerts.Values)
            {
                if (a.IsGlobal || single.Matches(a))
                {
                    client.QueueAlert(a.Id, _options.MaxPendingPerClient, Metrics);
                }
            }
        }

        Signal();
    }

    /// <summary>Removes a subscription; returns false when the client did not hold it.</summary>
    public bool Unsubscribe(string clientId, Subscription subscription)
    {
        if (!_clients.TryGetValue(clientId, out var client))
        {
            return false;
        }

        bool removed;
        lock (client.Gate)
        {
            removed = client.Remove(subscription);
        }

        RebuildIndex();
        return removed;
    }

    /// <summary>The subscriptions a client holds (for tests and diagnostics).</summary>
    public IReadOnlyList<Subscription> SubscriptionsOf(string clientId)
    {
        if (!_clients.TryGetValue(clientId, out var client))
        {
            return [];
        }

        lock (client.Gate)
        {
            return [.. client.Subscriptions];
        }
    }

    /// <summary>The send queue of one client (what a slow client holds on the server), or null when not connected.</summary>
    public LiveClientStats? ClientStats(string clientId)
    {
        if (!_clients.TryGetValue(clientId, out var client))
        {
            return null;
        }

        var now = _time.GetTimestamp();
        lock (client.Gate)
        {
            return client.Stats(_time, now);
        }
    }

    /// <summary>The send queues of all clients summed up, for <c>/metrics</c>.</summary>
    public LiveClientsSummary ClientsSummary()
    {
        var now = _time.GetTimestamp();
        int maxPending = 0, sending = 0, stalled = 0;
        long pending = 0;
        foreach (var client in _clients.Values)
        {
            LiveClientStats s;
            lock (client.Gate)
            {
                s = client.Stats(_time, now);
            }

            pending += s.PendingItems;
            maxPending = Math.Max(maxPending, s.PendingItems);
            sending += s.SendsInFlight;
            if (s.OldestSendInFlight >= TimeSpan.FromSeconds(1))
            {
                stalled++;
            }
        }

        return new LiveClientsSummary(pending, maxPending, sending, stalled);
    }

    // The clients per stop, route and vehicle id, the box subscribers and every subscribed client, rebuilt (copy on
    // write) when a subscription changes, so that a change is matched against the clients that want it instead of
    // against every client.
    private void RebuildIndex()
    {
        lock (_indexGate)
        {
            var stops = new Dictionary<string, List<LiveClient>>(StringComparer.Ordinal);
            var routes = new Dictionary<string, List<LiveClient>>(StringComparer.Ordinal);
            var vehicles = new Dictionary<string, List<LiveClient>>(StringComparer.Ordinal);
            var boxes = new List<LiveClient>();
            var all = new List<LiveClient>();
            foreach (var client in _clients.Values)
            {
                lock (client.Gate)
                {
                    if (client.Subscriptions.Count == 0)
                    {
                        continue;
                    }

                    all.Add(client);
                    var hasBox = false;
                    foreach (var s in client.Subscriptions)
                    {
                        var into = s.Kind switch
                        {
                            SubscriptionKind.Stop => stops,
                            SubscriptionKind.Route => routes,
                            SubscriptionKind.Vehicle => vehicles,
                            _ => null,
                        };
                        if (into is null)
                        {
                            hasBox = true;
                        }
                        else if (into.TryGetValue(s.Id, out var list))
                        {
                            list.Add(client);
                        }
                        else
                        {
                            into[s.Id] = [client];
                        }
                    }

                    if (hasBox)
                    {
                        boxes.Add(client);
                    }
                }
            }

            static Dictionary<string, LiveClient[]> Freeze(Dictionary<string, List<LiveClient>> d) =>
                d.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray(), StringComparer.Ordinal);

            _index = new SubscriptionIndex(Freeze(stops), Freeze(routes), Freeze(vehicles), [.. boxes], [.. all]);
        }
    }

    // ---- the push loops -------------------------------------------------------------------------------------

    /// <summary>
    /// Runs the two push loops until cancelled: the vehicle lane every <see cref="LiveOptions.Tick"/> (vehicles and
    /// removals, at most one batch per <see cref="LiveOptions.BatchInterval"/> per client), and the prediction lane,
    /// woken by every published prediction or alert and pushing them at once, never waiting for the vehicle batch.
    /// </summary>
    public Task RunAsync(CancellationToken cancellationToken) =>
        Task.WhenAll(RunVehicleLaneAsync(cancellationToken), RunUrgentLaneAsync(cancellationToken));

    private async Task RunVehicleLaneAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.Tick, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                // A failure in one tick is logged and counted; the loop goes on, the next tick retries.
                try
                {
                    FlushVehicles();
                }
#pragma warning disable CA1031 // The loop must survive any one tick's failure.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    Metrics.CountFlushFailure();
                    LogFlushFailed(ex);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    // The prediction lane runs on its own thread, so that a push never waits for a thread-pool thread (Kestrel's
    // and the clients' work queue there) before it starts.
    private Task RunUrgentLaneAsync(CancellationToken cancellationToken) =>
        Task.Factory.StartNew(() => RunUrgentLane(cancellationToken), cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private void RunUrgentLane(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            lock (_urgentMonitor)
            {
                // The flag is set before the pulse, and read under the same lock, so no wake-up is lost.
                while (Volatile.Read(ref _urgentSignaled) == 0 && !cancellationToken.IsCancellationRequested)
                {
                    Monitor.Wait(_urgentMonitor, 100);
                }
            }

            if (cancellationToken.IsCancellationRequested)
            {
                return;
            }

            // Re-armed before the pass: anything published from here on is either in this pass's change set or
            // wakes the loop again.
            Volatile.Write(ref _urgentSignaled, 0);
            try
            {
                FlushUrgent(all: false);
            }
#pragma warning disable CA1031 // The loop must survive any one pass's failure.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Metrics.CountFlushFailure();
                LogFlushFailed(ex);
            }
        }
    }

    // Wakes the prediction lane (once per pass, however many publishes).
    private void Signal()
    {
        if (Interlocked.Exchange(ref _urgentSignaled, 1) == 0)
        {
            lock (_urgentMonitor)
            {
                Monitor.Pulse(_urgentMonitor);
            }
        }
    }

    /// <summary>One pass of both lanes (what the loops do; tests call it with a fake clock).</summary>
    public void Flush()
    {
        FlushVehicles();
        FlushUrgent(all: true);
    }

    // The vehicle lane: distributes vehicle changes and removals, starts the vehicle batches that are due, and
    // disconnects a client whose push has been stuck for longer than SlowClientTimeout.
    private void FlushVehicles()
    {
        var now = _time.GetTimestamp();
        Metrics.Sample(now, VehicleCount, PredictionCount);
        if (_time.GetElapsedTime(_lastExpiry, now) >= TimeSpan.FromSeconds(1))
        {
            _lastExpiry = now;
            Expire(now);
        }

        HashSet<string> vehicles;
        Dictionary<string, VehicleState> removed;
        lock (_changeGate)
        {
            vehicles = _changedVehicles;
            _changedVehicles = _spareVehicles;
            _spareVehicles = vehicles;
            removed = _removedVehicles;
            _removedVehicles = _spareRemoved;
            _spareRemoved = removed;
        }

        try
        {
            var index = _index;
            foreach (var id in vehicles)
            {
                // A vehicle that left the client's view (moved out of its box, changed route) is not followed
                // further; the page ages such markers out on its own.
                if (_vehicles.TryGetValue(id, out var entry))
                {
                    index.ForVehicle(entry.State, client => client.QueueVehicle(id, _options.MaxPendingPerClient, Metrics));
                }
            }

            foreach (var (id, last) in removed)
            {
                index.ForVehicle(last, client => client.QueueRemoval(id, _options.MaxPendingPerClient, Metrics));
            }
        }
        finally
        {
            // The spares are only touched here and under _changeGate by the next swap.
            vehicles.Clear();
            removed.Clear();
        }

        foreach (var client in _clients.Values)
        {
            TrySendVehicles(client, now);
            AbortIfStalled(client, now);
        }
    }

    // The prediction lane: distributes changed predictions and alerts to the clients that want them and pushes
    // at once to each client that is not still writing its previous prediction push (that one gets the coalesced
    // rest when it finishes). Serialized: the tests' Flush and the loop may both call it.
    private void FlushUrgent(bool all)
    {
        lock (_urgentGate)
        {
            HashSet<PredictionKey> predictions;
            HashSet<string> alerts;
            lock (_changeGate)
            {
                predictions = _changedPredictions;
                _changedPredictions = _sparePredictions;
                _sparePredictions = predictions;
                alerts = _changedAlerts;
                _changedAlerts = _spareAlerts;
                _spareAlerts = alerts;
            }

            var touched = _touched;
            try
            {
                var index = _index;
                foreach (var key in predictions)
                {
                    void Queue(LiveClient client)
                    {
                        client.QueuePrediction(key, _options.MaxPendingPerClient, Metrics);
                        touched.Add(client);
                    }

                    if (_predictionsByStop.TryGetValue(key.StopId, out var byTrip) && byTrip.TryGetValue(key.TripId, out var p))
                    {
                        index.ForPrediction(p.StopId, p.RouteId, p.VehicleId, Queue);
                    }
                    else if (_withdrawn.TryGetValue(key, out var w))
                    {
                        index.ForPrediction(w.Withdrawal.StopId, w.Withdrawal.RouteId, w.Withdrawal.VehicleId, Queue);
                    }
                }

                foreach (var id in alerts)
                {
                    if (_alerts.TryGetValue(id, out var a))
                    {
                        index.ForAlert(a, client =>
                        {
                            client.QueueAlert(id, _options.MaxPendingPerClient, Metrics);
                            touched.Add(client);
                        });
                    }
                }

                if (all)
                {
                    foreach (var client in _clients.Values)
                    {
                        TrySendUrgent(client);
                    }
                }
                else
                {
                    foreach (var client in touched)
                    {
                        TrySendUrgent(client);
                    }
                }
            }
            finally
            {
                predictions.Clear();
                alerts.Clear();
                touched.Clear();
            }
        }
    }

    private void TrySendVehicles(LiveClient client, long now)
    {
        List<VehicleState> vehicles;
        List<string> removed;
        lock (client.Gate)
        {
            if (!client.HasPendingVehicles)
            {
                return;
            }

            if (client.Busy || (client.LastSent != 0 && _time.GetElapsedTime(client.LastSent, now) < _options.BatchInterval))
            {
                if (client.Busy && !client.MissCounted)
                {
                    // The client is still writing its previous batch: it misses this one (coalesced into the next).
                    client.MissCounted = true;
                    client.Missed++;
                    Metrics.CountMissedBatch();
                }

                return;
            }

            var max = _options.MaxBatchItems;
            vehicles = client.TakeVehicles(max, id => _vehicles.TryGetValue(id, out var e) ? e.State : null);
            removed = client.TakeRemovals(max);
            if (vehicles.Count == 0 && removed.Count == 0)
            {
                return;
            }

            client.Busy = true;
            client.BusySince = now;
            client.MissCounted = false;
            client.LastSent = now;
        }

        _ = SendPushAsync(client, urgent: false, LiveMethods.Vehicles, vehicles, LiveMethods.Removed, removed);
    }

    private void TrySendUrgent(LiveClient client)
    {
        List<ArrivalPrediction> predictions;
        List<PredictionWithdrawal> withdrawn;
        List<LiveAlert> alerts;
        lock (client.Gate)
        {
            if (!client.HasPendingUrgent)
            {
                return;
            }

            if (client.UrgentBusy)
            {
                if (!client.UrgentMissCounted)
                {
                    // Still writing its previous prediction push: these follow, coalesced, when it completes.
                    client.UrgentMissCounted = true;
                    client.Missed++;
                    Metrics.CountMissedBatch();
                }

                return;
            }

            var max = _options.MaxBatchItems;
            // A key is pushed in the state it has now: the prediction when one is held, else its withdrawal.
            withdrawn = [];
            var gone = withdrawn;
            predictions = client.TakePredictions(max, k =>
            {
                if (_predictionsByStop.TryGetValue(k.StopId, out var byTrip) && byTrip.TryGetValue(k.TripId, out var p))
                {
                    return p;
                }

                if (_withdrawn.TryGetValue(k, out var w))
                {
                    gone.Add(w.Withdrawal);
                }

                return null;
            });
            alerts = client.TakeAlerts(max, id => _alerts.TryGetValue(id, out var a) ? a : null);
            if (predictions.Count == 0 && withdrawn.Count == 0 && alerts.Count == 0)
            {
                return;
            }

            client.UrgentBusy = true;
            client.UrgentBusySince = _time.GetTimestamp();
            client.UrgentMissCounted = false;
        }

        _ = SendPushAsync(client, urgent: true, LiveMethods.Predictions, predictions, LiveMethods.Alerts, alerts, withdrawn);
    }

    // One push of a lane: up to two messages (vehicles then removals, or predictions then alerts); a failure concerns
    // this client only. The lane is free again when it ends.
    private async Task SendPushAsync<TFirst, TSecond>(
        LiveClient client, bool urgent, string firstMethod, List<TFirst> first, string secondMethod, List<TSecond> second,
        List<PredictionWithdrawal>? withdrawn = null)
    {
        try
        {
            if (first.Count > 0)
            {
                await _transport.SendAsync(client.Id, firstMethod, first, CancellationToken.None).ConfigureAwait(false);
            }

            if (withdrawn is { Count: > 0 })
            {
                await _transport.SendAsync(client.Id, LiveMethods.Withdrawn, withdrawn, CancellationToken.None).ConfigureAwait(false);
            }

            if (second.Count > 0)
            {
                await _transport.SendAsync(client.Id, secondMethod, second, CancellationToken.None).ConfigureAwait(false);
            }

            Metrics.CountBatch(first.Count + second.Count + (withdrawn?.Count ?? 0));
        }
#pragma warning disable CA1031 // A failed send concerns one client only (usually it went away): count and go on.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Metrics.CountSendFailure();
            LogSendFailed(client.Id, ex.Message);
        }
        finally
        {
            lock (client.Gate)
            {
                if (urgent)
                {
                    client.UrgentBusy = false;
                }
                else
                {
                    client.Busy = false;
                }
            }
        }

        // What queued up while a prediction push was being written goes now, not at the next publish (the vehicle
        // lane has its own tick).
        if (urgent && _clients.ContainsKey(client.Id))
        {
            TrySendUrgent(client);
        }
    }

    private void AbortIfStalled(LiveClient client, long now)
    {
        Action? abort;
        lock (client.Gate)
        {
            var stuck = (client.Busy && _time.GetElapsedTime(client.BusySince, now) > _options.SlowClientTimeout)
                || (client.UrgentBusy && _time.GetElapsedTime(client.UrgentBusySince, now) > _options.SlowClientTimeout);
            if (!stuck || client.Aborted)
            {
                return;
            }

            client.Aborted = true;
            abort = client.Abort;
        }

        Metrics.CountSlowClientAborted();
        LogSlowClient(client.Id, _options.SlowClientTimeout.TotalSeconds);
        abort?.Invoke();
        // Forgotten at once, with everything queued for it: the transport ends the connection (and the hub calls
        // Disconnect again, harmlessly) only when its stuck write gives up.
        Disconnect(client.Id);
    }

    private void Expire(long now)
    {
        foreach (var (id, entry) in _vehicles)
        {
            if (_time.GetElapsedTime(entry.Seen, now) > _options.VehicleTtl)
            {
                RemoveVehicle(id);
                Metrics.CountExpired();
            }
        }

        if (LatestEventTime is { } latest)
        {
            var cutoff = latest - _options.PredictionTtl;
            var signal = false;
            lock (_roundGate)
            {
                foreach (var (stopId, byTrip) in _predictionsByStop)
                {
                    foreach (var (tripId, p) in byTrip)
                    {
                        if (p.Predicted < cutoff)
                        {
                            signal |= WithdrawLocked(new PredictionKey(stopId, tripId), p, WithdrawReason.Expired, latest);
                        }
                    }
                }
            }

            if (signal)
            {
                Signal();
            }

            ExpireRounds(latest, now);
            var alertCutoff = latest - _options.AlertTtl;
            foreach (var (id, a) in _alerts)
            {
                if (a.Time < alertCutoff)
                {
                    _alerts.TryRemove(id, out _);
                }
            }
        }
    }

    private void AdvanceEventTime(DateTime time)
    {
        var ticks = time.Ticks;
        var seen = Interlocked.Read(ref _latestEventTicks);
        while (ticks > seen)
        {
            var was = Interlocked.CompareExchange(ref _latestEventTicks, ticks, seen);
            if (was == seen)
            {
                return;
            }

            seen = was;
        }
    }

    [LoggerMessage(EventId = 5001, Level = LogLevel.Error, Message = "Live fan-out tick failed")]
    private partial void LogFlushFailed(Exception exception);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Debug, Message = "Push to client {ClientId} failed: {Reason}")]
    private partial void LogSendFailed(string clientId, string reason);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Warning, Message = "Client {ClientId} has not read a push for {Seconds} s: disconnecting it")]
    private partial void LogSlowClient(string clientId, double seconds);

    private readonly record struct VehicleEntry(VehicleState State, long Seen);
}

/// <summary>The send queue of one client.</summary>
/// <param name="PendingItems">Updates waiting for the client (coalesced keys; at most <see cref="LiveOptions.MaxPendingPerClient"/>).</param>
/// <param name="SendsInFlight">Pushes being written to it (at most 2: one vehicle batch, one prediction push).</param>
/// <param name="OldestSendInFlight">How long the oldest of those has been being written.</param>
/// <param name="MissedBatches">Pushes it missed because it was still writing the previous one.</param>
public readonly record struct LiveClientStats(int PendingItems, int SendsInFlight, TimeSpan OldestSendInFlight, long MissedBatches);

/// <summary>The send queues of all clients.</summary>
/// <param name="PendingItems">Updates waiting, all clients.</param>
/// <param name="MaxPendingItems">Updates waiting for the client with the most.</param>
/// <param name="SendsInFlight">Pushes being written, all clients.</param>
/// <param name="Stalled">Clients with a push in flight for a second or more.</param>
public readonly record struct LiveClientsSummary(long PendingItems, int MaxPendingItems, int SendsInFlight, int Stalled);

/// <summary>Which clients may want a change: by stop, route and vehicle id, the box subscribers, every subscribed
/// client (global alerts). Immutable; rebuilt when a subscription changes. Each candidate is checked with its own
/// filter under its lock before anything is queued, so a stale index never sends what a client did not ask for.</summary>
internal sealed class SubscriptionIndex(
    Dictionary<string, LiveClient[]> stops,
    Dictionary<string, LiveClient[]> routes,
    Dictionary<string, LiveClient[]> vehicles,
    LiveClient[] boxes,
    LiveClient[] all)
{
    public static readonly SubscriptionIndex Empty = new([], [], [], [], []);

    public void ForVehicle(VehicleState v, Action<LiveClient> queue)
    {
        if (vehicles.TryGetValue(v.Id, out var byVehicle))
        {
            Visit(byVehicle, v, queue);
        }

        if (v.RouteId is not null && routes.TryGetValue(v.RouteId, out var byRoute))
        {
            Visit(byRoute, v, queue);
        }

        Visit(boxes, v, queue);
    }

    /// <summary>True when a client follows the prediction's stop, route or vehicle.</summary>
    public bool WantsPrediction(ArrivalPrediction p) =>
        stops.ContainsKey(p.StopId) || (p.RouteId is not null && routes.ContainsKey(p.RouteId)) ||
        (p.VehicleId is not null && vehicles.ContainsKey(p.VehicleId));

    /// <summary>Queues for the clients that follow a prediction's (or a withdrawal's) stop, route or vehicle.</summary>
    public void ForPrediction(string stopId, string? routeId, string? vehicleId, Action<LiveClient> queue)
    {
        if (stops.TryGetValue(stopId, out var byStop))
        {
            Visit(byStop, stopId, routeId, vehicleId, queue);
        }

        if (routeId is not null && routes.TryGetValue(routeId, out var byRoute))
        {
            Visit(byRoute, stopId, routeId, vehicleId, queue);
        }

        if (vehicleId is not null && vehicles.TryGetValue(vehicleId, out var byVehicle))
        {
            Visit(byVehicle, stopId, routeId, vehicleId, queue);
        }
    }

    public void ForAlert(LiveAlert a, Action<LiveClient> queue)
    {
        if (a.IsGlobal)
        {
            foreach (var client in all)
            {
                lock (client.Gate)
                {
                    if (client.Subscriptions.Count > 0)
                    {
                        queue(client);
                    }
                }
            }

            return;
        }

        if (a.StopId is not null && stops.TryGetValue(a.StopId, out var byStop))
        {
            Visit(byStop, a, queue);
        }

        if (a.RouteId is not null && routes.TryGetValue(a.RouteId, out var byRoute))
        {
            Visit(byRoute, a, queue);
        }

        if (a.VehicleId is not null && vehicles.TryGetValue(a.VehicleId, out var byVehicle))
        {
            Visit(byVehicle, a, queue);
        }
    }

    private static void Visit(LiveClient[] clients, VehicleState v, Action<LiveClient> queue)
    {
        foreach (var client in clients)
        {
            lock (client.Gate)
            {
                if (client.Matches(v))
                {
                    queue(client);
                }
            }
        }
    }

    private static void Visit(LiveClient[] clients, string stopId, string? routeId, string? vehicleId, Action<LiveClient> queue)
    {
        foreach (var client in clients)
        {
            lock (client.Gate)
            {
                if (client.MatchesPrediction(stopId, routeId, vehicleId))
                {
                    queue(client);
                }
            }
        }
    }

    private static void Visit(LiveClient[] clients, LiveAlert a, Action<LiveClient> queue)
    {
        foreach (var client in clients)
        {
            lock (client.Gate)
            {
                if (client.Matches(a))
                {
                    queue(client);
                }
            }
        }
    }
}

/// <summary>Key of a prediction: one trip at one stop.</summary>
/// <param name="StopId">Stop id.</param>
/// <param name="TripId">Trip id.</param>
public readonly record struct PredictionKey(string StopId, string TripId);

/// <summary>Names of the server-to-client hub methods.</summary>
public static class LiveMethods
{
    /// <summary>A batch of changed <see cref="VehicleState"/>s.</summary>
    public const string Vehicles = "vehicles";

    /// <summary>A batch of vehicle ids that are gone.</summary>
    public const string Removed = "removed";

    /// <summary>A batch of changed <see cref="ArrivalPrediction"/>s.</summary>
    public const string Predictions = "predictions";

    /// <summary>A batch of <see cref="PredictionWithdrawal"/>s: predictions taken back (drop the row).</summary>
    public const string Withdrawn = "withdrawn";

    /// <summary>A batch of new or changed <see cref="LiveAlert"/>s.</summary>
    public const string Alerts = "alerts";
}

/// <summary>One connected client's subscriptions and pending (coalesced) keys.</summary>
/// <remarks>Guarded by <see cref="Gate"/>; only <see cref="LiveEvents"/> touches it.</remarks>
[DebuggerDisplay("{Id} subs={Subscriptions.Count} busy={Busy} urgentBusy={UrgentBusy}")]
internal sealed class LiveClient(string id, Action? abort = null)
{
    public readonly Lock Gate = new();

    public string Id { get; } = id;

    public Action? Abort { get; } = abort;

    public HashSet<Subscription> Subscriptions { get; } = [];

    /// <summary>A vehicle batch is being written.</summary>
    public bool Busy { get; set; }

    public long BusySince { get; set; }

    public bool MissCounted { get; set; }

    public long LastSent { get; set; }

    /// <summary>A prediction/alert push is being written.</summary>
    public bool UrgentBusy { get; set; }

    public long UrgentBusySince { get; set; }

    public bool UrgentMissCounted { get; set; }

    /// <summary>Pushes this client missed (coalesced into a later one) because it was still writing.</summary>
    public long Missed { get; set; }

    /// <summary>Disconnected as too slow (once).</summary>
    public bool Aborted { get; set; }

    public LiveClientStats Stats(TimeProvider time, long now)
    {
        var oldest = TimeSpan.Zero;
        if (Busy)
        {
            oldest = time.GetElapsedTime(BusySince, now);
        }

        if (UrgentBusy && time.GetElapsedTime(UrgentBusySince, now) is var u && u > oldest)
        {
            oldest = u;
        }

        return new LiveClientStats(PendingCount, (Busy ? 1 : 0) + (UrgentBusy ? 1 : 0), oldest, Missed);
    }

    private readonly HashSet<string> _vehicleIds = new(StringComparer.Ordinal);
    private readonly HashSet<string> _routeIds = new(StringComparer.Ordinal);
    private readonly HashSet<string> _stopIds = new(StringComparer.Ordinal);
    private readonly List<BoundingBox> _boxes = [];

    private readonly HashSet<string> _pendingVehicles = new(StringComparer.Ordinal);
    private readonly HashSet<string> _pendingRemovals = new(StringComparer.Ordinal);
    private readonly HashSet<PredictionKey> _pendingPredictions = [];
    private readonly HashSet<string> _pendingAlerts = new(StringComparer.Ordinal);

    public bool HasPendingVehicles => _pendingVehicles.Count + _pendingRemovals.Count > 0;

    public bool HasPendingUrgent => _pendingPredictions.Count + _pendingAlerts.Count > 0;

    private int PendingCount => _pendingVehicles.Count + _pendingRemovals.Count + _pendingPredictions.Count + _pendingAlerts.Count;

    public void Add(Subscription s)
    {
        Subscriptions.Add(s);
        Rebuild();
    }

    public bool Remove(Subscription s)
    {
        var removed = Subscriptions.Remove(s);
        Rebuild();
        return removed;
    }

    private void Rebuild()
    {
        _vehicleIds.Clear();
        _routeIds.Clear();
        _stopIds.Clear();
        _boxes.Clear();
        foreach (var s in Subscriptions)
        {
            switch (s.Kind)
            {
                case SubscriptionKind.Vehicle: _vehicleIds.Add(s.Id); break;
                case SubscriptionKind.Route: _routeIds.Add(s.Id); break;
                case SubscriptionKind.Stop: _stopIds.Add(s.Id); break;
                case SubscriptionKind.Bbox: _boxes.Add(s.Box); break;
                default: break;
            }
        }
    }

    public bool Matches(VehicleState v)
    {
        if (_vehicleIds.Contains(v.Id) || (v.RouteId is not null && _routeIds.Contains(v.RouteId)))
        {
            return true;
        }

        foreach (var box in _boxes)
        {
            if (box.Contains(v.Latitude, v.Longitude))
            {
                return true;
            }
        }

        return false;
    }

    public bool Matches(ArrivalPrediction p) => MatchesPrediction(p.StopId, p.RouteId, p.VehicleId);

    public bool MatchesPrediction(string stopId, string? routeId, string? vehicleId) =>
        _stopIds.Contains(stopId)
        || (routeId is not null && _routeIds.Contains(routeId))
        || (vehicleId is not null && _vehicleIds.Contains(vehicleId));

    public bool Matches(LiveAlert a) =>
        (a.StopId is not null && _stopIds.Contains(a.StopId))
        || (a.RouteId is not null && _routeIds.Contains(a.RouteId))
        || (a.VehicleId is not null && _vehicleIds.Contains(a.VehicleId));

    public void QueueVehicle(string id, int max, LiveMetrics metrics)
    {
        _pendingRemovals.Remove(id);
        if (!_pendingVehicles.Contains(id) && PendingCount >= max)
        {
            metrics.CountRejected(RejectReason.ClientPendingLimit);
            return;
        }

        _pendingVehicles.Add(id);
    }

    public void QueueRemoval(string id, int max, LiveMetrics metrics)
    {
        _pendingVehicles.Remove(id);
        if (!_pendingRemovals.Contains(id) && PendingCount >= max)
        {
            metrics.CountRejected(RejectReason.ClientPendingLimit);
            return;
        }

        _pendingRemovals.Add(id);
    }

    public void QueuePrediction(PredictionKey key, int max, LiveMetrics metrics)
    {
        if (!_pendingPredictions.Contains(key) && PendingCount >= max)
        {
            metrics.CountRejected(RejectReason.ClientPendingLimit);
            return;
        }

        _pendingPredictions.Add(key);
    }

    public void QueueAlert(string id, int max, LiveMetrics metrics)
    {
        if (!_pendingAlerts.Contains(id) && PendingCount >= max)
        {
            metrics.CountRejected(RejectReason.ClientPendingLimit);
            return;
        }

        _pendingAlerts.Add(id);
    }

    public List<VehicleState> TakeVehicles(int max, Func<string, VehicleState?> lookup) => Take(_pendingVehicles, max, lookup);

    public List<string> TakeRemovals(int max) => Take(_pendingRemovals, max, static id => id);

    public List<ArrivalPrediction> TakePredictions(int max, Func<PredictionKey, ArrivalPrediction?> lookup) => Take(_pendingPredictions, max, lookup);

    public List<LiveAlert> TakeAlerts(int max, Func<string, LiveAlert?> lookup) => Take(_pendingAlerts, max, lookup);

    private static List<TValue> Take<TKey, TValue>(HashSet<TKey> pending, int max, Func<TKey, TValue?> lookup)
        where TValue : class
    {
        var result = new List<TValue>(Math.Min(pending.Count, max));
        if (pending.Count <= max)
        {
            foreach (var key in pending)
            {
                if (lookup(key) is { } value)
                {
                    result.Add(value);
                }
            }

            pending.Clear();
            return result;
        }

        // More than fits in one message: send the first max, keep the rest for the next batch.
        var taken = new List<TKey>(max);
        foreach (var key in pending)
        {
            if (taken.Count == max)
            {
                break;
            }

            taken.Add(key);
            if (lookup(key) is { } value)
            {
                result.Add(value);
            }
        }

        foreach (var key in taken)
        {
            pending.Remove(key);
        }

        return result;
    }

    /// <summary>A stand-alone matcher for one subscription (used to build a new subscription's initial view).</summary>
    internal sealed class Filter
    {
        private readonly LiveClient _one = new(string.Empty);

        public Filter(Subscription s) => _one.Add(s);

        public bool Matches(VehicleState v) => _one.Matches(v);

        public bool Matches(ArrivalPrediction p) => _one.Matches(p);

        public bool Matches(LiveAlert a) => _one.Matches(a);
    }
}
