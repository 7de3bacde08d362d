using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using Akka.Streams;
using Akka.Streams.Dsl;
using Fleet.Actors.Hosting;
using Fleet.Dashboard.Hosting;
using Fleet.Dashboard.Live;
using Fleet.Tracking;
using Fleet.Tracking.Replay;
using Fleet.Tracking.Schedule;
using Fleet.Tracking.Vehicles;
using Fleet.Ingest.Events;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;
using Fleet.Ingest.Streams;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Sources;

/// <summary>What <c>fleet serve --replay</c> replays and how.</summary>
public sealed record ReplayOptions
{
    /// <summary>The recording (HSL dump lines, optionally gzip).</summary>
    public required string Path { get; init; }

    /// <summary>Replay speed: 1 is real time, 10 ten times faster.</summary>
    public double Speed { get; init; } = 1;

    /// <summary>Start again from the beginning at the end.</summary>
    public bool Loop { get; init; }

    /// <summary>Shift event times so the replay looks live (recorded time + shift = now).</summary>
    public bool ShiftToNow { get; init; } = true;

    /// <summary>
    /// Where the first round starts, as a fraction of the file (0, the default, is its beginning); the lines before it
    /// are skipped, vehicles join their trips where they are, and later rounds of a loop start at the beginning.
    /// A run resuming from a stored checkpoint resumes there instead.
    /// </summary>
    public double StartAt { get; init; }

    /// <summary>The fastest replay accepted.</summary>
    public const double MaxSpeed = 1000;
}

/// <summary>Where a replay is, for <c>GET /api/replay</c>.</summary>
/// <param name="File">The recording's file name.</param>
/// <param name="Playing">False while paused.</param>
/// <param name="Speed">Current speed.</param>
/// <param name="Position">Fraction of the file read, 0 to 1.</param>
/// <param name="RecordedTime">Receive time of the current line, as recorded (not shifted).</param>
/// <param name="Round">Loop round, 0 for the first pass.</param>
/// <param name="Finished">True when a non-looping replay reached the end.</param>
public sealed record ReplayState(string File, bool Playing, double Speed, double Position, DateTime? RecordedTime, int Round, bool Finished);

/// <summary>Controls a running replay (the page's play/pause, speed and position slider).</summary>
public interface IReplayControl
{
    /// <summary>Current state.</summary>
    public ReplayState State { get; }

    /// <summary>What is added to recorded times to show them as now (zero when not shifting).</summary>
    public TimeSpan Shift { get; }

    /// <summary>Pauses or resumes.</summary>
    public void SetPlaying(bool playing);

    /// <summary>Changes the speed (0 &lt; speed ≤ <see cref="ReplayOptions.MaxSpeed"/>).</summary>
    public void SetSpeed(double speed);

    /// <summary>Jumps to a fraction (0 to 1) of the recording.</summary>
    public void Seek(double position);
}

/// <summary>
/// Replays a recording into <see cref="LiveEvents"/>, paced by its receive times, optionally looping, with event
/// times shifted to now so that the map looks live. HFP position events become vehicle states; with a GTFS network,
/// they and the recording's GTFS-RT snapshots are tracked on the node's partitions.
/// </summary>
/// <remarks>
/// Each pass over the file (the first, a loop round, a seek) is an Akka.Streams graph: the recording's lines
/// (<see cref="RecordingSources.Lines"/>) paced and applied one step per line, ended by the file's end or a seek.
/// Pacing is re-anchored (recorded time ↔ wall clock) at the start, after a pause, a speed change or a seek, so
/// none of them makes the replay race to catch up. The control methods only set fields the pacing step reads, so
/// they are thread-safe and never block.
/// </remarks>
public sealed partial class ReplaySource : BackgroundService, IReplayControl, IMetricsContributor
{
    private readonly ReplayOptions _options;
    private readonly LiveEvents _live;
    private readonly SourceStatus _status;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly HfpStream _hfp = new();
    private readonly Lock _gate = new();
    private TaskCompletionSource _resumed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _playing = true;
    private double _speed;
    private double? _seek;
    private bool _reanchor = true;
    private double _position;
    private long _recordedTicks;
    private int _round;
    // The persisted tracking's round: a new vehicle region for every pass that starts event time over (each loop round
    // and each seek), saved in the checkpoint. _round only counts loops (what the page shows).
    private int _trackingRound;
    private long _shiftTicks;
    private bool _finished;
    private readonly Fleet.Gtfs.Schedule? _schedule;
    private LivePipeline? _pipeline;
    private readonly PersistentTracking? _persistent;
    private long _resumeLine;
    private readonly TrackingOptions _tracking;
    private readonly TrackingCluster _cluster;

    /// <summary>Creates the source; it starts with the host.</summary>
    /// <param name="options">What to replay.</param>
    /// <param name="live">Where vehicle states, predictions and alerts go.</param>
    /// <param name="sources">Registry for /api/health.</param>
    /// <param name="time">Wall clock for pacing.</param>
    /// <param name="logger">Logger.</param>
    /// <param name="cluster">
    /// The node: the replay's graph runs on its actor system; with a GTFS network, tracking runs on its Akka.NET
    /// partitions (<see cref="PersistentTracking"/>), journaled when it has a store (<c>fleet serve --store</c>: a
    /// restart on the same store resumes), in memory otherwise.
    /// </param>
    /// <param name="network">
    /// The GTFS network, when serve has one: the replay then also runs through tracking (trip join, map matching,
    /// arrivals, alerts, predictions), whose derived events reach the live state through <see cref="LiveTrackingOutput"/>.
    /// </param>
    /// <param name="predictors">What predicts arrivals (the model when serve loaded one); null: the delay carried forward.</param>
    /// <param name="tracking">Tracking's thresholds; <see cref="TrackingOptions.Live"/> when null.</param>
    public ReplaySource(ReplayOptions options, LiveEvents live, SourceRegistry sources, TimeProvider time, ILogger<ReplaySource> logger,
        TrackingCluster cluster, ITransitNetwork? network = null, ArrivalPredictors? predictors = null, TrackingOptions? tracking = null)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        _cluster = cluster;
        _tracking = tracking ?? TrackingOptions.Live();
        _schedule = (network as GtfsNetwork)?.Schedule;
        if (_schedule is not null && options is not null)
        {
            _persistent = new PersistentTracking(cluster, _schedule, Path.GetFileName(options.Path),
                new LiveTrackingOutput(live, () => Shift), new DelayCarriedForwardPredictor(), time, logger,
                predictorPerRound: predictors is null ? null : predictors.Create, options: _tracking);
        }

        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.Speed);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.Speed, ReplayOptions.MaxSpeed);
        _options = options;
        _live = live;
        _time = time;
        _logger = logger;
        _speed = options.Speed;
        _status = sources.Register("replay:" + Path.GetFileName(options.Path), "replay");
        _status.ParserRejections = _hfp.Rejections;
    }

    /// <summary>The parser's figures (parsed, rejected by reason).</summary>
    public HfpStream Hfp => _hfp;

    /// <summary>The persisted tracking (with <c>--store</c> and a GTFS network), else null.</summary>
    public PersistentTracking? Persistent => _persistent;

    /// <inheritdoc />
    public ReplayState State
    {
        get
        {
            lock (_gate)
            {
                var ticks = Interlocked.Read(ref _recordedTicks);
                return new ReplayState(
                    Path.GetFileName(_options.Path), _playing, _speed, _position,
                    ticks == 0 ? null : new DateTime(ticks, DateTimeKind.Utc), _round, _finished);
            }
        }
    }

    /// <inheritdoc />
    public TimeSpan Shift => TimeSpan.FromTicks(Interlocked.Read(ref _shiftTicks));

    /// <inheritdoc />
    public void SetPlaying(bool playing)
    {
        lock (_gate)
        {
            if (_playing == playing)
            {
                return;
            }

            _playing = playing;
            _reanchor = true;
            if (playing)
            {
                _resumed.TrySetResult();
            }
            else
            {
                _resumed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }

    /// <inheritdoc />
    public void SetSpeed(double speed)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(speed);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(speed, ReplayOptions.MaxSpeed);
        lock (_gate)
        {
            _speed = speed;
            _reanchor = true;
        }
    }

    /// <inheritdoc />
    public void Seek(double position)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(position, 1);
        lock (_gate)
        {
            _seek = position;
            _reanchor = true;
            _finished = false;
        }
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!File.Exists(_options.Path))
        {
            _status.LastError = $"recording '{_options.Path}' not found";
            LogReplayFailed(_status.LastError);
            return;
        }

        _status.Connected = true;
        try
        {
            if (_persistent is not null)
            {
                // Resume: the round the last run was in, and (as a pacing hint) the line it had reached.
                var checkpoint = await _persistent.LoadCheckpointAsync(stoppingToken).ConfigureAwait(false);
                lock (_gate)
                {
                    _round = _options.Loop ? checkpoint.Round : 0;
                    _trackingRound = checkpoint.Round;
                }

                _resumeLine = checkpoint.Line;
                if (checkpoint.Line > 0)
                {
                    LogResuming(_round, checkpoint.Line);
                }
            }

            double? skipTo = _options.StartAt > 0 && _resumeLine == 0 ? _options.StartAt : null;
            while (!stoppingToken.IsCancellationRequested)
            {
                var (ended, seek) = await ReplayOnceAsync(skipTo, stoppingToken).ConfigureAwait(false);
                if (seek is not null)
                {
                    skipTo = seek;
                    lock (_gate)
                    {
                        _trackingRound++;
                    }

                    continue;
                }

                skipTo = null;
                if (ended && !_options.Loop)
                {
                    lock (_gate)
                    {
                        _finished = true;
                    }

                    LogReplayEnded(_options.Path, _hfp.Parsed);
                    // Stay "finished" until the page seeks somewhere (which restarts the read).
                    while (!stoppingToken.IsCancellationRequested && State.Finished)
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(200), _time, stoppingToken).ConfigureAwait(false);
                    }

                    lock (_gate)
                    {
                        skipTo = _seek;
                        _seek = null;
                        _trackingRound++;
                    }

                    continue;
                }

                lock (_gate)
                {
                    _round++;
                    _trackingRound++;
                    _reanchor = true;
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (Failure(ex) is AbruptTerminationException or AbruptStageTerminationException)
        {
            // The node's actor system stopped (only the host's shutdown stops it) before this source was told to.
        }
        catch (Exception ex) when (Failure(ex) is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            _status.LastError = Failure(ex).Message;
            LogReplayFailed(_status.LastError);
        }
        finally
        {
            _status.Connected = false;
            if (_persistent is not null)
            {
                await _persistent.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    // A stage's exception as thrown (Akka.Streams may hand it on wrapped in an AggregateException).
    private static Exception Failure(Exception ex) => ex is AggregateException { InnerExceptions.Count: 1 } a ? a.InnerExceptions[0] : ex;

    // One pass over the file (from skipTo), as a graph: the recording's lines (RecordingSources.Lines, read and parsed
    // ahead) -> one step per line, paced and applied (posted to the round's tracking stream, published) -> until a
    // seek ends the pass. Returns (true, null) at the file's end, or (false, position) when a seek asks to start over.
    private async Task<(bool Ended, double? Seek)> ReplayOnceAsync(double? skipTo, CancellationToken ct)
    {
        var system = await _cluster.GetSystemAsync().WaitAsync(ct).ConfigureAwait(false);
        if (_persistent is not null)
        {
            int round;
            lock (_gate)
            {
                round = _trackingRound;
            }

            await _persistent.StartRoundAsync(round).ConfigureAwait(false);
        }

        // Event time starts over with this pass (the first, a loop or a seek): nothing predicted before it may stay
        // on a board, in a vehicle's next stops or in the GTFS-RT feed. The previous pass's tracking has stopped
        // (the persisted round's stream was drained by StartRoundAsync just above).
        _live.WithdrawAllPredictions(WithdrawReason.Restarted);

        // The pipeline publishes this pass's vehicles; tracking runs on the persisted round's partitions.
        _pipeline = new LivePipeline(_live, network: null, _time, shift: () => Shift, options: _tracking);
        var pass = new Pass();
        using var materializer = system.Materializer();
        var (kill, done) = RecordingSources.Lines(_options.Path, _hfp, skipTo ?? 0)
            .ViaMaterialized(KillSwitches.Single<RecordedLine>(), Keep.Right)
            // Pacing and applying are one step so that a line is applied before the next one is paced: when the
            // replay waits on the clock, everything before is applied (what a stepped clock in the tests relies on).
            .SelectAsync(1, async line =>
            {
                try
                {
                    var step = await PaceAsync(line, pass, ct).ConfigureAwait(false);
                    if (step.Seek is null)
                    {
                        await ApplyAsync(step, ct).ConfigureAwait(false);
                    }

                    return step;
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return new Step(line, default, CatchUp: false, Seek: null, Stopped: true); // the host stops: the pass ends
                }
            })
            .TakeWhile(step => step.Seek is null && !step.Stopped)
            .ToMaterialized(Sink.Ignore<Step>(), Keep.Both)
            .Run(materializer);
        await using (ct.Register(kill.Shutdown).ConfigureAwait(false))
        {
            await done.ConfigureAwait(false);
        }

        ct.ThrowIfCancellationRequested();
        if (pass.Seek is { } seek)
        {
            return (false, seek);
        }

        if (_persistent is not null)
        {
            await _persistent.TickAsync(pass.LastLine, default, ct, force: true).ConfigureAwait(false);
        }

        return (true, null);
    }

    // A pass's pacing: recorded time <-> wall clock, re-anchored at its start and after a pause, speed change or seek.
    private sealed class Pass
    {
        public bool First = true;
        public DateTime AnchorRecorded;
        public DateTimeOffset AnchorWall;
        public TimeSpan Shift;
        public double Speed = 1;
        public long LastLine;
        public double? Seek;
    }

    // A line paced: applied with the shift current when it was due, or (CatchUp) applied at once; or the pass's end
    // (a seek's position, or Stopped when the host stops).
    private readonly record struct Step(RecordedLine Line, TimeSpan Shift, bool CatchUp, double? Seek, bool Stopped = false);

    private async Task<Step> PaceAsync(RecordedLine line, Pass pass, CancellationToken ct)
    {
        var recorded = line.Recorded;
        pass.LastLine = line.Line;
        if (pass.First)
        {
            // The pass's first line: time is shifted to now from here on, before tracking publishes anything of this
            // pass (the pacing below anchors on the same line).
            pass.First = false;
            if (_options.ShiftToNow)
            {
                Interlocked.Exchange(ref _shiftTicks, (_time.GetUtcNow().UtcDateTime - recorded).Ticks);
            }
        }

        _position = line.Progress;
        Interlocked.Exchange(ref _recordedTicks, recorded.Ticks);
        if (_persistent is not null)
        {
            if (line.Line <= _resumeLine)
            {
                // Catching up after a restart: the vehicles skip what they applied before; no pacing, no map.
                return new Step(line, default, CatchUp: true, Seek: null);
            }

            if (_resumeLine > 0)
            {
                _resumeLine = 0;
                lock (_gate)
                {
                    _reanchor = true;
                }
            }
        }

        Task? paused = null;
        lock (_gate)
        {
            if (_seek is { } seek)
            {
                _seek = null;
                pass.Seek = seek;
                return new Step(line, default, CatchUp: false, seek);
            }

            if (!_playing)
            {
                paused = _resumed.Task;
            }

            if (_reanchor)
            {
                _reanchor = false;
                Anchor(pass, recorded);
            }
        }

        if (paused is not null)
        {
            await paused.WaitAsync(ct).ConfigureAwait(false);
            lock (_gate)
            {
                Anchor(pass, recorded);
                _reanchor = false;
            }
        }

        var due = pass.AnchorWall + ((recorded - pass.AnchorRecorded) / pass.Speed);
        var wait = due - _time.GetUtcNow();
        // Sleep only when it is worth it; a burst of lines with the same second goes through at once.
        if (wait > TimeSpan.FromMilliseconds(5))
        {
            await Task.Delay(wait, _time, ct).ConfigureAwait(false);
        }

        return new Step(line, pass.Shift, CatchUp: false, Seek: null);
    }

    // Called under _gate.
    private void Anchor(Pass pass, DateTime recorded)
    {
        pass.AnchorRecorded = recorded;
        pass.AnchorWall = _time.GetUtcNow();
        pass.Speed = _speed;
        pass.Shift = _options.ShiftToNow ? pass.AnchorWall.UtcDateTime - recorded : TimeSpan.Zero;
    }

    private async Task ApplyAsync(Step step, CancellationToken ct)
    {
        var line = step.Line;
        if (_persistent is not null)
        {
            if (line.Outcome == HfpOutcome.GtfsRt)
            {
                _persistent.TakeGtfsRt(line.GtfsRt, line.Recorded);
            }

            await PostPersistentAsync(line.Outcome, line.Event, line.Line, ct).ConfigureAwait(false);
            if (step.CatchUp)
            {
                return;
            }

            await _persistent.TickAsync(line.Line, line.Recorded, ct).ConfigureAwait(false);
        }

        if (line.Outcome == HfpOutcome.Event)
        {
            Publish(line.Event, step.Shift);
        }
    }

    private ValueTask PostPersistentAsync(HfpOutcome outcome, in VehicleEvent ev, long lineNumber, CancellationToken ct) => outcome switch
    {
        HfpOutcome.Event => _persistent!.PostAsync(ev, lineNumber, ct),
        HfpOutcome.GtfsRt => _persistent!.PostGtfsRtAsync(lineNumber, ct),
        _ => default,
    };

    /// <summary>
    /// The replay's parse figures (lines rejected by reason) and, with a store, the persisted tracking's runtime
    /// figures (mailbox depth, buffered messages, journal queue: where backpressure shows).
    /// </summary>
    public void CreateInstruments(Meter meter)
    {
        ArgumentNullException.ThrowIfNull(meter);
        meter.Counter("fleet_replay_parsed_total", "Recording messages parsed into events.", () => _hfp.Parsed);
        meter.CreateObservableCounter("fleet_replay_rejected_total", () => Enum.GetValues<Fleet.Ingest.RejectReason>()
            .Where(r => r != Fleet.Ingest.RejectReason.None)
            .Select(r => new Measurement<long>(_hfp.Rejections[r], new KeyValuePair<string, object?>("reason", r.ToString()))),
            description: "Recording lines rejected, by reason.");

        // With a store: the tracking stream of the current pass (each pass has its own); nothing without one.
        IEnumerable<Measurement<long>> Stream(Func<Fleet.Actors.Streams.TrackingStream, long> read) =>
            _persistent?.Stream is { } stream ? [new Measurement<long>(read(stream))] : [];
        IEnumerable<Measurement<long>> Persisted(Func<PersistentTracking, long> read) =>
            _persistent is { } p ? [new Measurement<long>(read(p))] : [];
        meter.CreateObservableGauge("fleet_tracking_partitions", () => Stream(s => s.Partitions), description: "Partitions of the vehicle stream this pass has sent to.");
        meter.CreateObservableGauge("fleet_tracking_stream_pending", () => Stream(s => s.Pending),
            description: "Events (and clock ticks, stop updates) offered to tracking's stream and not yet tracked and published: where backpressure shows.");
        meter.CreateObservableGauge("fleet_tracking_batches_in_flight", () => Stream(s => s.InFlight), description: "Batches sent to the partitions and not yet acknowledged.");
        meter.CreateObservableCounter("fleet_tracking_batches_total", () => Stream(s => s.Batches), description: "Batches the partitions journaled and tracked (this pass).");
        meter.CreateObservableCounter("fleet_tracking_already_applied_total", () => Persisted(p => p.AlreadyApplied),
            description: "Events skipped because a run before a restart had applied them.");
        meter.CreateObservableCounter("fleet_journal_events_total", () => Persisted(p => p.Journaled), description: "Events journaled by the partitions.");
    }

    private void Publish(in VehicleEvent ev, TimeSpan shift)
    {
        Interlocked.Exchange(ref _shiftTicks, shift.Ticks);
        _pipeline?.Publish(ev, _status);
    }

    [LoggerMessage(EventId = 5010, Level = LogLevel.Error, Message = "Replay failed: {Reason}")]
    private partial void LogReplayFailed(string reason);

    [LoggerMessage(EventId = 5012, Level = LogLevel.Information, Message = "Resuming the replay from the store: round {Round}, catching up to line {Line}")]
    private partial void LogResuming(int round, long line);

    [LoggerMessage(EventId = 5011, Level = LogLevel.Information, Message = "Replay of {Path} ended after {Events} events")]
    private partial void LogReplayEnded(string path, long events);
}

/// <summary>Registers the inputs of <c>fleet serve</c> with the host.</summary>
public static class SourceServices
{
    /// <summary>Adds a replay of a recording (one <see cref="ReplaySource"/>, also the <see cref="IReplayControl"/>).</summary>
    public static IServiceCollection AddReplay(this IServiceCollection services, ReplayOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        services.AddSingleton(options);
        services.AddSingleton<ReplaySource>();
        services.AddSingleton<IReplayControl>(sp => sp.GetRequiredService<ReplaySource>());
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<ReplaySource>());
        services.AddSingleton<IMetricsContributor>(sp => sp.GetRequiredService<ReplaySource>());
        return services;
    }
}
