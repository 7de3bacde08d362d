using System.Globalization;
using System.Threading.Channels;
using Fleet.Ingest.Recording;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Fleet.Ingest.Replay;

/// <summary>One input of a <see cref="Replayer"/>: a name and a way to open it (again, when looping).</summary>
/// <param name="Name">Shown in logs and carried as <see cref="RecordedMessage.Source"/>.</param>
/// <param name="Open">Opens a fresh reader at the start of the recording.</param>
public sealed record ReplaySource(string Name, Func<RecordingReader> Open)
{
    /// <summary>A recording file (plain or gzip).</summary>
    public static ReplaySource FromFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return new ReplaySource(path, () => RecordingReader.Open(path));
    }
}

/// <summary>Settings of a <see cref="Replayer"/>.</summary>
public sealed class ReplayOptions
{
    /// <summary>
    /// Replay speed as a multiple of real time: 1 is live, 10 is ten times faster; <see cref="double.PositiveInfinity"/>
    /// (<see cref="MaxSpeed"/>) sends as fast as the sink takes messages.
    /// </summary>
    public double Speed { get; set; } = 1;

    /// <summary>Start again from the beginning after the last message, forever (until cancelled).</summary>
    public bool Loop { get; set; }

    /// <summary>The "as fast as possible" speed.</summary>
    public const double MaxSpeed = double.PositiveInfinity;

    /// <summary>Parses a <c>--speed</c> value: a positive number or <c>max</c>.</summary>
    public static bool TryParseSpeed(string? text, out double speed)
    {
        speed = 1;
        if (string.Equals(text, "max", StringComparison.OrdinalIgnoreCase))
        {
            speed = MaxSpeed;
            return true;
        }

        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out speed) && speed > 0 && double.IsFinite(speed);
    }
}

/// <summary>What a <see cref="Replayer"/> is doing.</summary>
public enum ReplayState
{
    /// <summary>Not started.</summary>
    Idle,

    /// <summary>Reading the next message.</summary>
    Reading,

    /// <summary>Waiting for the message's due time on the (scaled) replay clock.</summary>
    WaitingForClock,

    /// <summary>Waiting for room in the sink (backpressure).</summary>
    WaitingForSink,

    /// <summary>Finished (or cancelled).</summary>
    Done,
}

/// <summary>
/// Replays recordings: several files merged in receive-time order, paced by their receive times scaled by a speed
/// factor, optionally looping, into a bounded channel.
/// </summary>
/// <remarks>
/// <para>Pacing: the first message goes at once; message <c>m</c> is due <c>(m.time - first.time) / speed</c> after
/// the start, on the injected <see cref="TimeProvider"/>. Falling behind does not make the replayer skip: it sends as
/// fast as it can until it has caught up. When the sink is full the replayer waits (backpressure), and that wait
/// counts as falling behind.</para>
/// <para>Merging: the message with the earliest receive time among the files' next messages goes first; ties and
/// lines without a readable time keep their file's order.</para>
/// <para>Looping: each round is shifted later by the recording's span plus one second, so receive times keep
/// increasing; payloads (and their event times) are replayed unchanged, and <see cref="RecordedMessage.Loop"/> says
/// which round a message belongs to.</para>
/// <para>Lifecycle: <c>Idle → Reading ⇄ WaitingForClock/WaitingForSink → Done</c>. <see cref="RunAsync"/> runs once;
/// progress properties may be read from any thread while it runs. It does not complete the channel writer.</para>
/// </remarks>
public sealed class Replayer
{
    private readonly IReadOnlyList<ReplaySource> _sources;
    private readonly ReplayOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly RecordingReader?[] _readers;
    private long _sent;
    private long _positionTicks;
    private int _state;
    private int _loop;

    /// <summary>Creates a replayer over <paramref name="sources"/>.</summary>
    public Replayer(IReadOnlyList<ReplaySource> sources, ReplayOptions? options = null, TimeProvider? timeProvider = null, ILogger<Replayer>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentOutOfRangeException.ThrowIfZero(sources.Count);
        _sources = sources;
        _options = options ?? new ReplayOptions();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(_options.Speed);
        _time = timeProvider ?? TimeProvider.System;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _readers = new RecordingReader?[sources.Count];
    }

    /// <summary>Messages written to the sink so far (over all loops).</summary>
    public long MessagesSent => Volatile.Read(ref _sent);

    /// <summary>The receive time of the last message sent (shifted by the loop offset), UTC.</summary>
    public DateTime? Position => Volatile.Read(ref _positionTicks) is var t and > 0 ? new DateTime(t, DateTimeKind.Utc) : null;

    /// <summary>The current round, 0 for the first pass.</summary>
    public int Loop => Volatile.Read(ref _loop);

    /// <summary>What the replayer is doing now.</summary>
    public ReplayState State => (ReplayState)Volatile.Read(ref _state);

    /// <summary>How far through the current round, 0 to 1, by bytes of the input files; null when unknown.</summary>
    public double? Progress
    {
        get
        {
            double sum = 0;
            for (var i = 0; i < _readers.Length; i++)
            {
                if (Volatile.Read(ref _readers[i]) is not { } r)
                {
                    sum += State == ReplayState.Done ? 1 : 0;
                    continue;
                }

                if (r.Progress is not { } p)
                {
                    return null;
                }

                sum += p;
            }

            return sum / _readers.Length;
        }
    }

    /// <summary>
    /// Replays into <paramref name="sink"/> until every source is exhausted (or forever with <see cref="ReplayOptions.Loop"/>),
    /// or until cancelled (then throws <see cref="OperationCanceledException"/>).
    /// </summary>
    /// <exception cref="InvalidOperationException">Called a second time.</exception>
    public async Task RunAsync(ChannelWriter<RecordedMessage> sink, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sink);
        if (Interlocked.CompareExchange(ref _state, (int)ReplayState.Reading, (int)ReplayState.Idle) != (int)ReplayState.Idle)
        {
            throw new InvalidOperationException("A replayer runs once.");
        }

        // Return to the caller at once: at max speed into a roomy sink nothing below would ever await.
        await Task.Yield();
        Log.ReplayStarted(_logger, _sources.Count, double.IsPositiveInfinity(_options.Speed) ? "max" : _options.Speed.ToString(CultureInfo.InvariantCulture));
        try
        {
            var startStamp = _time.GetTimestamp();
            DateTime? first = null;
            var shift = TimeSpan.Zero;
            while (true)
            {
                var (last, count) = await RunRoundAsync(sink, startStamp, shift, first, f => first = f, cancellationToken).ConfigureAwait(false);
                if (!_options.Loop || count == 0 || first is null)
                {
                    break;
                }

                Log.ReplayLooped(_logger, Loop, MessagesSent);
                // The next round starts one second after this one ended, on the same replay clock.
                shift = last - first.Value + TimeSpan.FromSeconds(1);
                Volatile.Write(ref _loop, _loop + 1);
            }

            Log.ReplayFinished(_logger, MessagesSent);
        }
        finally
        {
            for (var i = 0; i < _readers.Length; i++)
            {
                _readers[i]?.Dispose();
            }

            Volatile.Write(ref _state, (int)ReplayState.Done);
        }
    }

    private async Task<(DateTime Last, long Count)> RunRoundAsync(ChannelWriter<RecordedMessage> sink, long startStamp, TimeSpan shift,
        DateTime? first, Action<DateTime> setFirst, CancellationToken ct)
    {
        // The next message of each source, ordered by (receive time, source index); a source's malformed line
        // without a time inherits the time of that source's previous message so it keeps its place.
        var heads = new PriorityQueue<int, (DateTime Time, int Source)>();
        var pending = new RecordedMessage?[_sources.Count];
        var lastOfSource = new DateTime[_sources.Count];
        for (var i = 0; i < _sources.Count; i++)
        {
            _readers[i]?.Dispose();
            Volatile.Write(ref _readers[i], _sources[i].Open());
            Advance(i, heads, pending, lastOfSource, shift);
        }

        var last = first ?? default;
        long count = 0;
        while (heads.TryDequeue(out var source, out var key))
        {
            ct.ThrowIfCancellationRequested();
            var message = pending[source]!;
            Advance(source, heads, pending, lastOfSource, shift);

            var time = key.Time;
            if (time != default)
            {
                if (first is null)
                {
                    first = time;
                    setFirst(time);
                }

                if (!double.IsPositiveInfinity(_options.Speed))
                {
                    var due = TimeSpan.FromTicks((long)((time - first.Value).Ticks / _options.Speed));
                    var elapsed = _time.GetElapsedTime(startStamp);
                    if (due > elapsed)
                    {
                        Volatile.Write(ref _state, (int)ReplayState.WaitingForClock);
                        await Task.Delay(due - elapsed, _time, ct).ConfigureAwait(false);
                    }
                }

                last = time > last ? time : last;
            }

            if (!sink.TryWrite(message))
            {
                Volatile.Write(ref _state, (int)ReplayState.WaitingForSink);
                await sink.WriteAsync(message, ct).ConfigureAwait(false);
            }

            Volatile.Write(ref _state, (int)ReplayState.Reading);
            if (time != default)
            {
                Volatile.Write(ref _positionTicks, time.Ticks);
            }

            Volatile.Write(ref _sent, _sent + 1);
            count++;
            if ((count & 4095) == 0)
            {
                // Never hold a thread-pool thread for a whole file when nothing had to wait.
                await Task.Yield();
            }
        }

        return (last == default ? first ?? default : last, count);
    }

    private void Advance(int source, PriorityQueue<int, (DateTime, int)> heads, RecordedMessage?[] pending, DateTime[] lastOfSource, TimeSpan shift)
    {
        var reader = _readers[source]!;
        if (!reader.TryRead(out var line))
        {
            pending[source] = null;
            return;
        }

        var message = new RecordedMessage(line, _sources[source].Name, shift, Loop);
        var time = message.ReceiveTime == default ? lastOfSource[source] : message.ReceiveTime;
        lastOfSource[source] = time;
        pending[source] = message;
        heads.Enqueue(source, (time, source));
    }
}
