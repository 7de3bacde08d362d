using System.Net;
using Fleet.Gtfs.Realtime;
using Fleet.Ingest.Recording;
using Fleet.Testing;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using TransitRealtime;
using Xunit;

namespace Fleet.Gtfs.Tests.Realtime;

[Trait("Category", "Integration")]
public sealed class GtfsRtPollerTests
{
    private static readonly byte[] Body = new FeedMessage { Header = new FeedHeader { GtfsRealtimeVersion = "2.0", Timestamp = 42 } }.ToByteArray();

    private static GtfsRtPoller Poller(Uri url, TimeProvider time, TimeSpan? timeout = null) =>
        new(new HttpClient(), new GtfsRtPollerOptions { Url = url, FeedName = "test", Timeout = timeout ?? TimeSpan.FromSeconds(10) }, time, NullLogger<GtfsRtPoller>.Instance);

    /// <summary>200 with an ETag and Last-Modified unless the client sends the ETag back, then 304.</summary>
    private static async Task ConditionalHandler(HttpListenerRequest request, HttpListenerResponse response)
    {
        if (request.Headers["If-None-Match"] == "\"v1\"")
        {
            response.StatusCode = 304;
            return;
        }

        response.StatusCode = 200;
        response.Headers["ETag"] = "\"v1\"";
        response.Headers["Last-Modified"] = "Mon, 05 Jan 2026 04:00:00 GMT";
        await response.OutputStream.WriteAsync(Body);
    }

    [Fact]
    public async Task PollOnce_SecondRequest_IsConditionalAndNotModified()
    {
        using var server = new LoopbackHttpServer(ConditionalHandler);
        var time = new FakeTimeProvider();
        var poller = Poller(server.Url, time);
        var ct = TestContext.Current.CancellationToken;

        var first = await poller.PollOnceAsync(ct);
        var second = await poller.PollOnceAsync(ct);

        Assert.Equal(PollOutcome.Snapshot, first.Outcome);
        Assert.Equal(Body, first.Snapshot!.Payload.ToArray());
        Assert.Equal(time.GetUtcNow().UtcDateTime, first.Snapshot.ReceiveTime);
        Assert.Equal(42UL, GtfsRtDecoder.Decode(first.Snapshot.Payload.Span).Header.Timestamp);
        Assert.Equal(PollOutcome.NotModified, second.Outcome);
        var requests = server.Requests.ToArray();
        Assert.Equal((null, null), requests[0]);
        Assert.Equal("\"v1\"", requests[1].IfNoneMatch);
        Assert.Equal("Mon, 05 Jan 2026 04:00:00 GMT", requests[1].IfModifiedSince);
        Assert.Equal((1, 1, 0), (poller.Snapshots, poller.NotModifiedCount, poller.Failures));
    }

    [Fact]
    public async Task PollOnce_ServerErrors_BackOffDoublesUpToMaxAndHonoursRetryAfter()
    {
        using var server = new LoopbackHttpServer((_, response) =>
        {
            response.StatusCode = 503;
            response.Headers["Retry-After"] = "100";
            return Task.CompletedTask;
        });
        var poller = new GtfsRtPoller(
            new HttpClient(),
            new GtfsRtPollerOptions { Url = server.Url, Interval = TimeSpan.FromSeconds(15), MaxBackoff = TimeSpan.FromSeconds(200) },
            new FakeTimeProvider(),
            NullLogger<GtfsRtPoller>.Instance);
        var ct = TestContext.Current.CancellationToken;

        var delays = new List<double>();
        for (var i = 0; i < 5; i++)
        {
            var r = await poller.PollOnceAsync(ct);
            Assert.Equal(PollOutcome.Failed, r.Outcome);
            Assert.Contains("503", r.Error, StringComparison.Ordinal);
            delays.Add(poller.NextDelay(r).TotalSeconds);
        }

        // 15, 30, 60 are below Retry-After (100 s); then 120, then 240 capped at 200.
        Assert.Equal([100, 100, 100, 120, 200], delays);
        Assert.Equal(5, poller.ConsecutiveFailures);
    }

    [Fact]
    public async Task PollOnce_ServerNeverAnswers_TimesOutAsFailure()
    {
        var release = new TaskCompletionSource();
        using var server = new LoopbackHttpServer(async (_, _) => await release.Task);
        var poller = Poller(server.Url, TimeProvider.System, TimeSpan.FromMilliseconds(300));

        var r = await poller.PollOnceAsync(TestContext.Current.CancellationToken);
        release.SetResult();

        Assert.Equal(PollOutcome.Failed, r.Outcome);
        Assert.Contains("timed out", r.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PollOnce_NothingListening_FailsWithoutThrowing()
    {
        var poller = Poller(new Uri($"http://127.0.0.1:{FreePort.Next()}/feed.pb"), new FakeTimeProvider());

        var r = await poller.PollOnceAsync(TestContext.Current.CancellationToken);

        Assert.Equal(PollOutcome.Failed, r.Outcome);
        Assert.Equal(1, poller.ConsecutiveFailures);
    }

    [Fact]
    public async Task RunAsync_RecordsEachSnapshotAsGtfsRtLine()
    {
        using var server = new LoopbackHttpServer(async (_, response) => await response.OutputStream.WriteAsync(Body));
        var time = new ArmSignallingTime(TimeSpan.FromSeconds(15));
        var poller = Poller(server.Url, time);
        var buffer = new MemoryStream();
        var writer = new RecordingWriter(buffer, gzip: false, leaveOpen: true);
        var received = 0;
        var second = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var run = poller.RunAsync(
            (s, _) =>
            {
                GtfsRtPoller.RecordSnapshot(writer, s);
                if (Interlocked.Increment(ref received) == 2)
                {
                    second.TrySetResult();
                }

                return ValueTask.CompletedTask;
            },
            cts.Token);

        // The fake clock only moves when told: each time the poller arms its 15 s wait, move time past it.
        while (!second.Task.IsCompleted)
        {
            var armed = await Task.WhenAny(time.IntervalArmed.WaitAsync(TestContext.Current.CancellationToken), second.Task).WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
            Assert.True(armed.IsCompletedSuccessfully, "the poller neither armed its interval timer nor delivered a second snapshot");
            if (!second.Task.IsCompleted)
            {
                time.Fake.Advance(TimeSpan.FromSeconds(15));
            }
        }

        await cts.CancelAsync();
        await run;
        writer.Dispose();

        var lines = System.Text.Encoding.UTF8.GetString(buffer.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length >= 2);
        var parts = lines[0].Split(' ');
        Assert.Equal("gtfs-rt/test", parts[1]);
        Assert.Equal(Body, Convert.FromBase64String(parts[2]));
    }

    /// <summary>Delegates to a <see cref="FakeTimeProvider"/> and signals whenever a timer with the given due time is created.</summary>
    private sealed class ArmSignallingTime(TimeSpan signalDue) : TimeProvider
    {
        public FakeTimeProvider Fake { get; } = new();

        public SemaphoreSlim IntervalArmed { get; } = new(0);

        public override DateTimeOffset GetUtcNow() => Fake.GetUtcNow();

        public override long GetTimestamp() => Fake.GetTimestamp();

        public override long TimestampFrequency => Fake.TimestampFrequency;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = Fake.CreateTimer(callback, state, dueTime, period);
            if (dueTime == signalDue)
            {
                IntervalArmed.Release();
            }

            return timer;
        }
    }
}
