namespace Fleet.Dashboard.Live;

/// <summary>Why something was refused or dropped by the fan-out.</summary>
public enum RejectReason
{
    /// <summary>A new vehicle beyond <see cref="LiveOptions.MaxVehicles"/>.</summary>
    VehicleLimit,
    /// <summary>A new prediction beyond <see cref="LiveOptions.MaxPredictions"/>.</summary>
    PredictionLimit,
    /// <summary>The oldest alert dropped beyond <see cref="LiveOptions.MaxAlerts"/>.</summary>
    AlertLimit,
    /// <summary>An update a slow client could not queue (<see cref="LiveOptions.MaxPendingPerClient"/>).</summary>
    ClientPendingLimit,
}

/// <summary>Counters of the live pipeline, rendered by <c>/metrics</c> and <c>/api/health</c>.</summary>
/// <remarks>Thread-safe: counters are updated with <see cref="Interlocked"/>; rates are sampled by the flush loop
/// once a second over the last five seconds.</remarks>
public sealed class LiveMetrics
{
    private const int Window = 5;
    private readonly TimeProvider _time;
    private readonly Lock _sampleGate = new();
    private readonly (long At, long Events, long Predictions)[] _samples = new (long, long, long)[Window + 1];
    private int _sampleCount;
    private long _lastSample;

    private long _events;
    private long _vehicleUpdates;
    private long _predictions;
    private long _unchangedPredictions;
    private long _batches;
    private long _items;
    private long _missedBatches;
    private long _sendFailures;
    private long _slowClientsAborted;
    private long _flushFailures;
    private long _expired;
    private readonly long[] _rejected = new long[Enum.GetValues<RejectReason>().Length];
    private long _lagMilliseconds;

    internal LiveMetrics(TimeProvider time) => _time = time;

    /// <summary>Events received from every source.</summary>
    public long Events => Interlocked.Read(ref _events);

    /// <summary>Vehicle state updates published.</summary>
    public long VehicleUpdates => Interlocked.Read(ref _vehicleUpdates);

    /// <summary>Predictions published.</summary>
    public long Predictions => Interlocked.Read(ref _predictions);

    /// <summary>Predictions that said the same as the one held, so were not pushed (push on change only).</summary>
    public long UnchangedPredictions => Interlocked.Read(ref _unchangedPredictions);

    /// <summary>Batches pushed to clients.</summary>
    public long Batches => Interlocked.Read(ref _batches);

    /// <summary>Items pushed to clients (vehicles + removals + predictions + alerts).</summary>
    public long ItemsPushed => Interlocked.Read(ref _items);

    /// <summary>Pushes slow clients missed (coalesced into a later one) because their previous push was still being written.</summary>
    public long MissedBatches => Interlocked.Read(ref _missedBatches);

    /// <summary>Pushes that failed (client gone).</summary>
    public long SendFailures => Interlocked.Read(ref _sendFailures);

    /// <summary>Clients disconnected because a push to them was stuck for <see cref="LiveOptions.SlowClientTimeout"/>.</summary>
    public long SlowClientsDisconnected => Interlocked.Read(ref _slowClientsAborted);

    /// <summary>Flush ticks that failed.</summary>
    public long FlushFailures => Interlocked.Read(ref _flushFailures);

    /// <summary>Vehicles removed for silence.</summary>
    public long Expired => Interlocked.Read(ref _expired);

    /// <summary>Hub clients connected.</summary>
    public int Clients { get; internal set; }

    /// <summary>Vehicles currently known (sampled).</summary>
    public int VehicleCount { get; private set; }

    /// <summary>Predictions currently kept (sampled).</summary>
    public int PredictionCount { get; private set; }

    /// <summary>Events per second over the last five seconds.</summary>
    public double EventsPerSecond { get; private set; }

    /// <summary>Predictions per second over the last five seconds.</summary>
    public double PredictionsPerSecond { get; private set; }

    /// <summary>Lag of the newest event: wall clock minus its (possibly shifted) event time, in seconds.</summary>
    public double LagSeconds => Interlocked.Read(ref _lagMilliseconds) / 1000.0;

    /// <summary>Refusals by reason.</summary>
    public long Rejected(RejectReason reason) => Interlocked.Read(ref _rejected[(int)reason]);

    /// <summary>Counts one event from a source and records its lag.</summary>
    public void CountEvent(DateTime eventTime)
    {
        Interlocked.Increment(ref _events);
        var lag = (_time.GetUtcNow().UtcDateTime - eventTime).TotalMilliseconds;
        Interlocked.Exchange(ref _lagMilliseconds, (long)Math.Max(0, lag));
    }

    internal void CountVehicleUpdate() => Interlocked.Increment(ref _vehicleUpdates);

    internal void CountPrediction() => Interlocked.Increment(ref _predictions);

    internal void CountUnchangedPrediction() => Interlocked.Increment(ref _unchangedPredictions);

    internal void CountBatch(int items)
    {
        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _items, items);
    }

    internal void CountMissedBatch() => Interlocked.Increment(ref _missedBatches);

    internal void CountSendFailure() => Interlocked.Increment(ref _sendFailures);

    internal void CountSlowClientAborted() => Interlocked.Increment(ref _slowClientsAborted);

    internal void CountFlushFailure() => Interlocked.Increment(ref _flushFailures);

    internal void CountExpired() => Interlocked.Increment(ref _expired);

    internal void CountRejected(RejectReason reason) => Interlocked.Increment(ref _rejected[(int)reason]);

    internal void Sample(long now, int vehicles, int predictions)
    {
        VehicleCount = vehicles;
        PredictionCount = predictions;
        lock (_sampleGate)
        {
            if (_sampleCount > 0 && _time.GetElapsedTime(_lastSample, now) < TimeSpan.FromSeconds(1))
            {
                return;
            }

            _lastSample = now;
            // Shift the ring: the oldest sample falls out, the newest goes last.
            if (_sampleCount == _samples.Length)
            {
                Array.Copy(_samples, 1, _samples, 0, _samples.Length - 1);
                _sampleCount--;
            }

            _samples[_sampleCount++] = (now, Events, Predictions);
            if (_sampleCount >= 2)
            {
                var first = _samples[0];
                var last = _samples[_sampleCount - 1];
                var seconds = _time.GetElapsedTime(first.At, last.At).TotalSeconds;
                if (seconds > 0)
                {
                    EventsPerSecond = (last.Events - first.Events) / seconds;
                    PredictionsPerSecond = (last.Predictions - first.Predictions) / seconds;
                }
            }
        }
    }
}
