using System.Text;
using System.Threading.Channels;
using Fleet.Ingest.Recording;
using Fleet.Ingest.Replay;
using Fleet.Testing;

namespace Fleet.Ingest.Tests;

public sealed class ReplayerTests
{
    private static readonly DateTime s_t0 = new(2024, 2, 13, 16, 33, 0, DateTimeKind.Utc);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A source of messages with topic "/t/NAME" at s_t0 + the given seconds.</summary>
    private static ReplaySource Source(string name, params double[] seconds)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < seconds.Length; i++)
        {
            var t = s_t0.AddSeconds(seconds[i]).ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", System.Globalization.CultureInfo.InvariantCulture);
            sb.Append(t).Append(" /t/").Append(name).Append(i).Append(" {}\n");
        }

        var bytes = Encoding.UTF8.GetBytes(sb.ToString());
        return new ReplaySource(name, () => new RecordingReader(new MemoryStream(bytes), name));
    }

    private static string Topic(RecordedMessage m) => Encoding.UTF8.GetString(m.Topic.Span);

    [Fact]
    public async Task RunAsync_SeveralFiles_MergedInReceiveTimeOrder()
    {
        var channel = Channel.CreateUnbounded<RecordedMessage>();
        var replayer = new Replayer([Source("a", 0, 2, 4, 4), Source("b", 1, 2, 3, 5)], new ReplayOptions { Speed = ReplayOptions.MaxSpeed });

        await replayer.RunAsync(channel.Writer, Ct);
        channel.Writer.Complete();

        var topics = new List<string>();
        await foreach (var m in channel.Reader.ReadAllAsync(Ct))
        {
            topics.Add(Topic(m));
        }

        // Ties (2 s, 4 s) keep file order: a before b, a's own lines in order.
        Assert.Equal(["/t/a0", "/t/b0", "/t/a1", "/t/b1", "/t/b2", "/t/a2", "/t/a3", "/t/b3"], topics);
        Assert.Equal(8, replayer.MessagesSent);
        Assert.Equal(ReplayState.Done, replayer.State);
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(10.0)]
    public async Task RunAsync_Speed_PacesByScaledReceiveTimeOnTheInjectedClock(double speed)
    {
        var fake = new FakeTimeProvider();
        var clock = new TimerSignallingTimeProvider(fake);
        var channel = Channel.CreateUnbounded<RecordedMessage>();
        var replayer = new Replayer([Source("a", 0, 1, 3)], new ReplayOptions { Speed = speed }, clock);

        var run = replayer.RunAsync(channel.Writer, Ct);

        Assert.Equal("/t/a0", Topic(await channel.Reader.ReadAsync(Ct))); // the first message goes at once
        var wait = await clock.TimersCreated.ReadAsync(Ct);
        Assert.Equal(TimeSpan.FromSeconds(1 / speed), wait);
        Assert.Equal(ReplayState.WaitingForClock, replayer.State);
        fake.Advance(wait - TimeSpan.FromMilliseconds(1) / speed);
        Assert.False(channel.Reader.TryRead(out _)); // not due yet
        fake.Advance(TimeSpan.FromMilliseconds(1) / speed);
        Assert.Equal("/t/a1", Topic(await channel.Reader.ReadAsync(Ct)));

        Assert.Equal(TimeSpan.FromSeconds(2 / speed), await clock.TimersCreated.ReadAsync(Ct));
        Assert.False(channel.Reader.TryRead(out _));
        fake.Advance(TimeSpan.FromSeconds(2 / speed));
        Assert.Equal("/t/a2", Topic(await channel.Reader.ReadAsync(Ct)));
        await run;
    }

    [Fact]
    public async Task RunAsync_FullSink_WaitsInsteadOfRunningAhead()
    {
        const int capacity = 2;
        var channel = Channel.CreateBounded<RecordedMessage>(new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.Wait });
        var replayer = new Replayer([Source("a", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)], new ReplayOptions { Speed = ReplayOptions.MaxSpeed });

        var run = replayer.RunAsync(channel.Writer, Ct);
        await channel.Reader.WaitToReadAsync(Ct);
        Assert.False(run.IsCompleted); // 10 messages cannot fit into 2 slots

        var read = 0;
        while (read < 10)
        {
            var m = await channel.Reader.ReadAsync(Ct);
            Assert.Equal($"/t/a{read}", Topic(m));
            read++;
            // Sent counts messages the sink accepted: never more than what was read plus the channel's capacity.
            Assert.True(replayer.MessagesSent <= read + capacity, $"sent {replayer.MessagesSent} after reading {read}");
        }

        await run;
        Assert.Equal(10, replayer.MessagesSent);
    }

    [Fact]
    public async Task RunAsync_Loop_RepeatsWithIncreasingReceiveTimesUntilCancelled()
    {
        var channel = Channel.CreateUnbounded<RecordedMessage>();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var replayer = new Replayer([Source("a", 0, 2)], new ReplayOptions { Speed = ReplayOptions.MaxSpeed, Loop = true });
        var run = replayer.RunAsync(channel.Writer, cts.Token);

        var got = new List<RecordedMessage>();
        while (got.Count < 6)
        {
            got.Add(await channel.Reader.ReadAsync(Ct));
        }

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);

        Assert.Equal([0, 0, 1, 1, 2, 2], got.Select(m => m.Loop));
        Assert.Equal(["/t/a0", "/t/a1", "/t/a0", "/t/a1", "/t/a0", "/t/a1"], got.Select(Topic));
        // Each round is shifted by the span (2 s) plus 1 s.
        Assert.Equal([0.0, 2, 3, 5, 6, 8], got.Select(m => (m.ReceiveTime - s_t0).TotalSeconds));
        Assert.Equal(ReplayState.Done, replayer.State);
    }

    [Fact]
    public async Task RunAsync_MalformedLines_ArePassedOnInOrder()
    {
        var text = "2024-02-13T16:33:00Z /t/x {}\nnot a line at all\n2024-02-13T16:33:01Z /t/y {}\n";
        var bytes = Encoding.UTF8.GetBytes(text);
        var channel = Channel.CreateUnbounded<RecordedMessage>();
        var replayer = new Replayer([new ReplaySource("m", () => new RecordingReader(new MemoryStream(bytes), "m"))], new ReplayOptions { Speed = ReplayOptions.MaxSpeed });

        await replayer.RunAsync(channel.Writer, Ct);
        channel.Writer.Complete();

        var kinds = new List<(RecordKind, RejectReason)>();
        await foreach (var m in channel.Reader.ReadAllAsync(Ct))
        {
            kinds.Add((m.Kind, m.Rejection));
        }

        Assert.Equal([(RecordKind.Message, RejectReason.None), (RecordKind.Malformed, RejectReason.BadReceiveTime), (RecordKind.Message, RejectReason.None)], kinds);
    }

    [Theory]
    [InlineData("1", 1.0)]
    [InlineData("10", 10.0)]
    [InlineData("0.5", 0.5)]
    [InlineData("max", double.PositiveInfinity)]
    [InlineData("MAX", double.PositiveInfinity)]
    public void TryParseSpeed_Valid(string text, double expected)
    {
        Assert.True(ReplayOptions.TryParseSpeed(text, out var speed));
        Assert.Equal(expected, speed);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("fast")]
    [InlineData(null)]
    public void TryParseSpeed_Invalid(string? text) => Assert.False(ReplayOptions.TryParseSpeed(text, out _));

    /// <summary>Delegates to a fake clock and reports every timer created (its due time), so a test knows the replayer is waiting.</summary>
    private sealed class TimerSignallingTimeProvider(FakeTimeProvider inner) : TimeProvider
    {
        private readonly Channel<TimeSpan> _created = Channel.CreateUnbounded<TimeSpan>();

        public ChannelReader<TimeSpan> TimersCreated => _created.Reader;

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override long GetTimestamp() => inner.GetTimestamp();

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = inner.CreateTimer(callback, state, dueTime, period);
            _created.Writer.TryWrite(dueTime);
            return timer;
        }
    }
}
