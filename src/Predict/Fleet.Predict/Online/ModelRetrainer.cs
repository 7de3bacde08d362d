using Fleet.Predict.Learning;
using Fleet.Predict.Predictors;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Fleet.Predict.Online;

/// <summary>Options of <see cref="ModelRetrainer"/>.</summary>
public sealed record RetrainingOptions
{
    /// <summary>Event time between retrains; <see cref="TimeSpan.Zero"/> disables retraining. Default 1 hour.</summary>
    public TimeSpan Every { get; init; } = TimeSpan.FromHours(1);

    /// <summary>How much event time of labelled rows a retrain learns from (the sliding window). Default 3 hours.</summary>
    public TimeSpan Window { get; init; } = TimeSpan.FromHours(3);

    /// <summary>Most labelled rows kept; the oldest are dropped (and counted) beyond it. Default 200,000 (about 20 MB).</summary>
    public int MaxRows { get; init; } = 200_000;

    /// <summary>Fewest labelled rows in the window for a retrain; below it the retrain is skipped (and counted).</summary>
    public int MinRows { get; init; } = 2_000;

    /// <summary>Share of trips (by a hash of the row's group) held out to score the current and the new model.</summary>
    public double ValidationFraction { get; init; } = 0.2;

    /// <summary>The tree trainer (<see cref="TreeTrainers.Names"/>); serve uses the one the shipped model was trained with.</summary>
    public string Trainer { get; init; } = TreeTrainers.Gbdt;

    /// <summary>The trees' hyper-parameters (those of <c>fleet train</c> by default).</summary>
    public GbtOptions Trees { get; init; } = new Offline.ArrivalTrainingOptions().Trees;
}

/// <summary>What one retrain did.</summary>
/// <param name="EventTimeUnix">The event time it was started at.</param>
/// <param name="TrainRows">Rows trained on.</param>
/// <param name="ValidationRows">Held-out rows both models were scored on.</param>
/// <param name="OldMae">The current model's MAE (seconds) on the held-out rows.</param>
/// <param name="NewMae">The new model's MAE on the same rows; NaN when the retrain was skipped or failed.</param>
/// <param name="Swapped">True when the new model replaced the current one.</param>
/// <param name="Reason">Why it was not swapped (<c>worse</c>, <c>too_few_rows</c>, <c>failed</c>), or <c>swapped</c>.</param>
public sealed record RetrainOutcome(double EventTimeUnix, int TrainRows, int ValidationRows, double OldMae, double NewMae, bool Swapped, string Reason);

/// <summary>
/// Continuous learning: keeps a sliding window (in event time) of labelled rows — the model's features at a
/// prediction moment and the arrival later observed — and every <see cref="RetrainingOptions.Every"/> of event time
/// retrains the trees on it off the ingest thread, scores the current and the new model on the same held-out rows,
/// and swaps the new one in (a single reference exchange) only when its MAE is lower.
/// </summary>
/// <remarks>
/// <para>Lifecycle of a retrain:</para>
/// <code>
///  Idle ──OnEventTime (due, enough rows)──► Training (own low-priority thread) ──better──► swap, Idle
///    ▲                                          │ ──not better / failed──► keep, Idle
///    └──────────────────────────────────────────┘
/// </code>
/// <para>Threading: <see cref="Add"/> and <see cref="OnEventTime"/> may be called from any thread and never wait for
/// training: the window is guarded by a lock held only to append a row or to copy the window's rows out (training
/// then works on its own copy); at most one retrain runs at a time, and a due retrain while one runs is skipped.
/// <see cref="Current"/> is read with <see cref="Volatile"/> and replaced with one <see cref="Interlocked.Exchange{T}(ref T, T)"/>,
/// so a predictor sees either the old or the new model, never a mix.</para>
/// </remarks>
public sealed partial class ModelRetrainer
{
    private readonly RetrainingOptions _options;
    private readonly BoundProfile _profile;
    private readonly ILogger _logger;
    private readonly Action<Action> _start;
    private readonly Lock _gate = new();
    private readonly int _columns = ArrivalFeatures.Count;

    // The window: a ring of rows in arrival order (event time non-decreasing as the stream delivers it).
    private readonly float[] _features;
    private readonly float[] _targets;
    private readonly float[] _scales;
    private readonly float[] _horizons;
    private readonly int[] _groups;
    private readonly double[] _times;
    private int _head; // index of the oldest row
    private int _count;

    private ModelPredictor _current;
    private double _firstEventTime = double.NaN;
    private double _lastRetrainTime = double.NaN;
    private int _training; // 1 while a retrain runs
    private long _retrains;
    private long _swaps;
    private long _skipped;
    private long _dropped;
    private long _added;
    private RetrainOutcome? _last;
    private Task _running = Task.CompletedTask;

    /// <summary>Creates the retrainer around the model in use.</summary>
    /// <param name="current">The model predictions start with.</param>
    /// <param name="options">Window, cadence and tree options.</param>
    /// <param name="logger">Where swaps are logged; null for none.</param>
    /// <param name="startTraining">Runs a retrain job; null for a dedicated below-normal-priority background thread.
    /// Tests pass their own to hold a job at a gate.</param>
    public ModelRetrainer(ModelPredictor current, RetrainingOptions? options = null, ILogger? logger = null, Action<Action>? startTraining = null)
    {
        ArgumentNullException.ThrowIfNull(current);
        _options = options ?? new RetrainingOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxRows, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(_options.Every.Ticks);
        if (!(_options.ValidationFraction is > 0 and < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(options), "the validation fraction must be between 0 and 1");
        }

        _options.Trees.Validate();
        _ = TreeTrainers.Create(_options.Trainer, _options.Trees); // an unknown trainer fails here, not in the background
        _current = current;
        _profile = current.Profile;
        _logger = logger ?? NullLogger.Instance;
        _start = startTraining ?? StartThread;
        var cap = _options.MaxRows;
        _features = new float[cap * _columns];
        _targets = new float[cap];
        _scales = new float[cap];
        _horizons = new float[cap];
        _groups = new int[cap];
        _times = new double[cap];
    }

    /// <summary>The model predictions use now.</summary>
    public ModelPredictor Current => Volatile.Read(ref _current);

    /// <summary>The options in force.</summary>
    public RetrainingOptions Options => _options;

    /// <summary>Retrains finished (swapped or not, skipped ones excluded).</summary>
    public long Retrains => Interlocked.Read(ref _retrains);

    /// <summary>Retrains whose model was swapped in.</summary>
    public long Swaps => Interlocked.Read(ref _swaps);

    /// <summary>Due retrains skipped: too few rows, or the previous one still running.</summary>
    public long Skipped => Interlocked.Read(ref _skipped);

    /// <summary>Labelled rows dropped because the window was full (the oldest go first).</summary>
    public long DroppedRows => Interlocked.Read(ref _dropped);

    /// <summary>Labelled rows received.</summary>
    public long AddedRows => Interlocked.Read(ref _added);

    /// <summary>Rows in the window now.</summary>
    public int WindowRows
    {
        get
        {
            lock (_gate)
            {
                return _count;
            }
        }
    }

    /// <summary>The last retrain's outcome, or null before the first.</summary>
    public RetrainOutcome? Last => Volatile.Read(ref _last);

    /// <summary>The retrain in progress, or the last one (completed); for shutdown and tests.</summary>
    public Task Running => Volatile.Read(ref _running);

    /// <summary>True when a row of <paramref name="group"/> (a trip) belongs to the held-out rows both models are scored on.</summary>
    public bool IsValidationGroup(int group) => (Mix((ulong)(uint)group) % 1000) < _options.ValidationFraction * 1000;

    /// <summary>
    /// True when a row of <paramref name="group"/> goes to the new model's early-stopping rows: the next tenth of the
    /// hash range after the validation share, so the rows the two models are compared on never chose the new one's size.
    /// </summary>
    private bool IsStoppingGroup(int group)
    {
        var h = Mix((ulong)(uint)group) % 1000;
        return h >= _options.ValidationFraction * 1000 && h < (_options.ValidationFraction + 0.1) * 1000;
    }

    /// <summary>Adds a labelled row: the features at a prediction moment and target = (actual − Kalman) / scale.</summary>
    /// <param name="features">The <see cref="ArrivalFeatures"/> row.</param>
    /// <param name="target">What the model learns (<c>ModelPredictor.Target</c>).</param>
    /// <param name="scale">The row's target scale (seconds per unit of target).</param>
    /// <param name="horizonSeconds">Actual arrival − prediction moment.</param>
    /// <param name="group">The trip (rows of one trip stay on one side of the validation split).</param>
    /// <param name="eventTimeUnix">The arrival's event time.</param>
    public void Add(ReadOnlySpan<float> features, float target, float scale, float horizonSeconds, int group, double eventTimeUnix)
    {
        if (features.Length != _columns)
        {
            throw new ArgumentException($"expected {_columns} features, got {features.Length}", nameof(features));
        }

        if (!float.IsFinite(target) || !(scale > 0))
        {
            return; // not a row anyone can learn from; the caller computes them from finite times
        }

        lock (_gate)
        {
            var cap = _targets.Length;
            int slot;
            if (_count == cap)
            {
                slot = _head;
                _head = (_head + 1) % cap;
                _dropped++;
            }
            else
            {
                slot = (_head + _count) % cap;
                _count++;
            }

            features.CopyTo(_features.AsSpan(slot * _columns, _columns));
            _targets[slot] = target;
            _scales[slot] = scale;
            _horizons[slot] = horizonSeconds;
            _groups[slot] = group;
            _times[slot] = eventTimeUnix;
            _added++;
        }
    }

    /// <summary>
    /// Advances event time; starts a retrain (without waiting for it) when <see cref="RetrainingOptions.Every"/> has
    /// passed since the first event or the last retrain. Returns true when one was started.
    /// </summary>
    public bool OnEventTime(double eventTimeUnix)
    {
        if (_options.Every <= TimeSpan.Zero || double.IsNaN(eventTimeUnix))
        {
            return false;
        }

        lock (_gate)
        {
            if (double.IsNaN(_firstEventTime))
            {
                _firstEventTime = eventTimeUnix;
                _lastRetrainTime = eventTimeUnix;
                return false;
            }

            if (eventTimeUnix - _lastRetrainTime < _options.Every.TotalSeconds)
            {
                return false;
            }

            _lastRetrainTime = eventTimeUnix;
        }

        var at = PredictionContext.FromUnix(eventTimeUnix);
        if (Interlocked.CompareExchange(ref _training, 1, 0) != 0)
        {
            Interlocked.Increment(ref _skipped);
            LogRetrainSkipped(at, "the previous retrain is still running");
            return false;
        }

        var snapshot = Snapshot(eventTimeUnix);
        if (snapshot.Train.Rows < Math.Max(2, _options.MinRows * (1 - _options.ValidationFraction)) || snapshot.Validation.Rows == 0)
        {
            Interlocked.Increment(ref _skipped);
            Volatile.Write(ref _training, 0);
            LogTooFewRows(at, snapshot.Train.Rows + snapshot.Validation.Rows, _options.MinRows);
            return false;
        }

        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _running, done.Task);
        _start(() =>
        {
            try
            {
                Retrain(snapshot, eventTimeUnix);
            }
            finally
            {
                Volatile.Write(ref _training, 0);
                done.SetResult();
            }
        });
        return true;
    }

    private sealed record WindowCopy(Dataset Train, Dataset Stopping, Dataset Validation, float[] ValidationScale, float[] ValidationHorizon);

    /// <summary>Copies the rows inside the window out (under the lock; training then works on the copy).</summary>
    private WindowCopy Snapshot(double now)
    {
        var from = now - _options.Window.TotalSeconds;
        var train = new Dataset(ArrivalFeatures.Names, 1024);
        var validation = new Dataset(ArrivalFeatures.Names, 256);
        var stopping = new Dataset(ArrivalFeatures.Names, 256);
        var scale = new List<float>();
        var horizon = new List<float>();
        lock (_gate)
        {
            var cap = _targets.Length;
            for (var i = 0; i < _count; i++)
            {
                var slot = (_head + i) % cap;
                if (_times[slot] < from)
                {
                    continue;
                }

                var row = _features.AsSpan(slot * _columns, _columns);
                if (IsValidationGroup(_groups[slot]))
                {
                    validation.Add(row, _targets[slot], _groups[slot]);
                    scale.Add(_scales[slot]);
                    horizon.Add(_horizons[slot]);
                }
                else if (IsStoppingGroup(_groups[slot]))
                {
                    stopping.Add(row, _targets[slot], _groups[slot]);
                }
                else
                {
                    train.Add(row, _targets[slot], _groups[slot]);
                }
            }
        }

        return new WindowCopy(train, stopping, validation, [.. scale], [.. horizon]);
    }

    private void Retrain(WindowCopy s, double eventTime)
    {
        var at = PredictionContext.FromUnix(eventTime);
        var old = Current;
        try
        {
            var result = TreeTrainers.Create(_options.Trainer, _options.Trees).Fit(s.Train, s.Stopping.Rows > 0 ? s.Stopping : null);
            var oldMae = Mae(old.Gbt, s, null);
            var residuals = new List<(double, double)>(s.Validation.Rows);
            var newMae = Mae(result.Model, s, residuals);
            var better = newMae < oldMae;
            if (better)
            {
                var next = new ModelPredictor(result.Model, _profile, ResidualBands.Measure(residuals), old.Blend);
                Interlocked.Exchange(ref _current, next);
                Interlocked.Increment(ref _swaps);
                LogSwapped(at, oldMae, newMae, s.Train.Rows, s.Validation.Rows, result.Model.TreeCount);
            }
            else
            {
                LogKept(at, oldMae, newMae, s.Train.Rows, s.Validation.Rows);
            }

            Volatile.Write(ref _last, new RetrainOutcome(eventTime, s.Train.Rows, s.Validation.Rows, oldMae, newMae, better, better ? "swapped" : "worse"));
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or OutOfMemoryException)
        {
            // A background loop logs, counts and carries on: the current model stays.
            LogFailed(ex, at);
            Volatile.Write(ref _last, new RetrainOutcome(eventTime, s.Train.Rows, s.Validation.Rows, double.NaN, double.NaN, false, "failed"));
        }

        Interlocked.Increment(ref _retrains);
    }

    /// <summary>MAE in seconds of a tree model on the held-out rows; optionally collects (horizon, actual − predicted).</summary>
    private static double Mae(GbtModel model, WindowCopy s, List<(double, double)>? residuals)
    {
        var n = s.Validation.Rows;
        var predicted = new double[n];
        model.PredictMany(s.Validation.Features, n, predicted);
        var targets = s.Validation.Targets;
        var sum = 0.0;
        for (var i = 0; i < n; i++)
        {
            var error = (targets[i] - predicted[i]) * s.ValidationScale[i];
            sum += Math.Abs(error);
            residuals?.Add((s.ValidationHorizon[i], error));
        }

        return sum / n;
    }

    private static void StartThread(Action job)
    {
        // A dedicated thread, below the ingest and tracking threads, so training competes for spare CPU only.
        var thread = new Thread(() => job()) { IsBackground = true, Name = "fleet-retrain", Priority = ThreadPriority.BelowNormal };
        thread.Start();
    }

    private static ulong Mix(ulong x)
    {
        unchecked
        {
            x += 0x9E3779B97F4A7C15UL;
            x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
            x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
            return x ^ (x >> 31);
        }
    }

    [LoggerMessage(EventId = 4010, Level = LogLevel.Information,
        Message = "Arrival model retrained at event time {EventTime:O}: validation MAE {OldMae:F2} s (current) -> {NewMae:F2} s (new), swapped in ({TrainRows} training rows, {ValidationRows} held out, {Trees} trees)")]
    private partial void LogSwapped(DateTime eventTime, double oldMae, double newMae, int trainRows, int validationRows, int trees);

    [LoggerMessage(EventId = 4011, Level = LogLevel.Information,
        Message = "Arrival model retrained at event time {EventTime:O}: validation MAE {OldMae:F2} s (current) vs {NewMae:F2} s (new), not better, current model kept ({TrainRows} training rows, {ValidationRows} held out)")]
    private partial void LogKept(DateTime eventTime, double oldMae, double newMae, int trainRows, int validationRows);

    [LoggerMessage(EventId = 4012, Level = LogLevel.Information, Message = "Arrival model retrain at event time {EventTime:O} skipped: {Reason}")]
    private partial void LogRetrainSkipped(DateTime eventTime, string reason);

    [LoggerMessage(EventId = 4014, Level = LogLevel.Information,
        Message = "Arrival model retrain at event time {EventTime:O} skipped: {Rows} labelled rows in the window, {MinRows} needed")]
    private partial void LogTooFewRows(DateTime eventTime, int rows, int minRows);

    [LoggerMessage(EventId = 4013, Level = LogLevel.Error, Message = "Arrival model retrain at event time {EventTime:O} failed; the current model stays")]
    private partial void LogFailed(Exception exception, DateTime eventTime);
}
