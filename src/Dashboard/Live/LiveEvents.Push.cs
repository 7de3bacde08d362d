using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Live;

public sealed partial class LiveEvents
{
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
                    void Queue(LiveConnection client)
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

    private void TrySendVehicles(LiveConnection client, long now)
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

        _ = SendPushAsync(client, urgent: false, static (c, v) => c.Vehicles(v), vehicles, static (c, r) => c.Removed(r), removed);
    }

    private void TrySendUrgent(LiveConnection client)
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

        _ = SendPushAsync(client, urgent: true, static (c, p) => c.Predictions(p), predictions, static (c, a) => c.Alerts(a), alerts, withdrawn);
    }

    // One push of a lane: up to two messages (vehicles then removals, or predictions then alerts); a failure concerns
    // this client only. The lane is free again when it ends.
    private async Task SendPushAsync<TFirst, TSecond>(
        LiveConnection client, bool urgent, Func<ILiveClient, List<TFirst>, Task> sendFirst, List<TFirst> first,
        Func<ILiveClient, List<TSecond>, Task> sendSecond, List<TSecond> second, List<PredictionWithdrawal>? withdrawn = null)
    {
        try
        {
            var to = _transport.Client(client.Id);
            if (first.Count > 0)
            {
                await sendFirst(to, first).ConfigureAwait(false);
            }

            if (withdrawn is { Count: > 0 })
            {
                await to.Withdrawn(withdrawn).ConfigureAwait(false);
            }

            if (second.Count > 0)
            {
                await sendSecond(to, second).ConfigureAwait(false);
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

    private void AbortIfStalled(LiveConnection client, long now)
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
