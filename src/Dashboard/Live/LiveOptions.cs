namespace Fleet.Dashboard.Live;

/// <summary>Bounds and timing of <see cref="LiveEvents"/>.</summary>
public sealed class LiveOptions
{
    /// <summary>At most one <c>vehicles</c> batch per client per this interval (default 250 ms).</summary>
    public TimeSpan BatchInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>How often the vehicle lane looks for changes and due batches (default 10 ms); what a vehicle batch
    /// may be late on its interval.</summary>
    public TimeSpan Tick { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <summary>A client one of whose pushes has not been written for this long (it stopped reading) is disconnected
    /// (default 30 s); until then it only misses pushes.</summary>
    public TimeSpan SlowClientTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Most vehicles kept; a new vehicle beyond this is rejected and counted.</summary>
    public int MaxVehicles { get; set; } = 100_000;

    /// <summary>Most predictions kept; a new prediction beyond this is rejected and counted.</summary>
    public int MaxPredictions { get; set; } = 1_000_000;

    /// <summary>Most alerts kept; the oldest is dropped beyond this.</summary>
    public int MaxAlerts { get; set; } = 500;

    /// <summary>Most subscriptions one client may hold.</summary>
    public int MaxSubscriptionsPerClient { get; set; } = 100;

    /// <summary>Most updates waiting for one client; beyond this the client misses them (counted).</summary>
    public int MaxPendingPerClient { get; set; } = 50_000;

    /// <summary>Most items in one pushed message; the rest follow in the next batch.</summary>
    public int MaxBatchItems { get; set; } = 5_000;

    /// <summary>A vehicle with no report for this long (wall clock) is removed (default 5 minutes).</summary>
    public TimeSpan VehicleTtl { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>A prediction whose predicted time is this far in the past is removed (default 2 minutes).</summary>
    public TimeSpan PredictionTtl { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// The predictions of a vehicle that has not reported (a position or a prediction round) for this long in event
    /// time are withdrawn (default 2 minutes, as tracking's stale alert).
    /// </summary>
    public TimeSpan PredictionStaleAfter { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>An alert older than this is removed (default 30 minutes).</summary>
    public TimeSpan AlertTtl { get; set; } = TimeSpan.FromMinutes(30);
}
