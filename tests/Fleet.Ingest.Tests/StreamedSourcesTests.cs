using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Akka.Actor;
using Akka.Streams;
using Akka.Streams.Dsl;
using Fleet.Gtfs.Realtime;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Streams;
using Fleet.Mqtt;
using Fleet.Testing;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using TransitRealtime;

namespace Fleet.Ingest.Tests;

/// <summary>The live sources as Akka.Streams graphs: a real mosquitto for MQTT, a scripted HTTP handler for GTFS-RT.</summary>
public sealed class StreamedSourcesTests : IAsyncLifetime
{
    private const string VpTopic = "/hfp/v2/journey/ongoing/vp/bus/0018/00679/1064/1/Itä-Pakila/21:12/1353117/0/60;24/29/45/98";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private ActorSystem _system = null!;
    private IMaterializer _materializer = null!;

    public ValueTask InitializeAsync()
    {
        _system = ActorSystem.Create("streamed-sources-test");
        _materializer = _system.Materializer();
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync() => await _system.Terminate();

    private static string Vp(int i) =>
        "{\"VP\":{\"desi\":\"1064\",\"dir\":\"1\",\"oper\":18,\"veh\":679,\"tst\":\"2023-10-29T19:46:" + (i % 60).ToString("00", System.Globalization.CultureInfo.InvariantCulture)
        + ".344Z\",\"tsi\":1698608800,\"spd\":" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)
        + ".5,\"lat\":60.249085,\"long\":24.958315,\"oday\":\"2023-10-29\",\"start\":\"21:12\",\"route\":\"1064\"}}";

    [Fact]
    public async Task Mqtt_Subscribe_DeliversTheBrokersMessagesInOrderAndParsesThem()
    {
        Assert.SkipUnless(Mosquitto.IsInstalled, "mosquitto is not installed (./test.sh installs it)");
        await using var broker = await Mosquitto.StartAsync();
        var health = new RecordingHealth();
        var hfp = new HfpStream();
        var settings = new MqttSourceSettings { Client = new MqttClientOptions { Server = broker.Url }, Filters = ["/hfp/v2/journey/ongoing/#"], Name = "test" };
        var received = MqttSources.Subscribe(settings, health, NullLoggerFactory.Instance)
            .Via(HfpFlows.Parse(hfp, TimeProvider.System))
            .Take(51)
            .RunWith(Sink.Seq<Fleet.Ingest.Events.VehicleEvent>(), _materializer);
        await WaitUntilAsync(() => health.State == "connected", "the source subscribed");

        await using (var publisher = new MqttClient(new MqttClientOptions { Server = broker.Url }))
        {
            await publisher.ConnectAsync(Ct);
            for (var i = 0; i < 50; i++)
            {
                await publisher.EnqueuePublishAsync(VpTopic, Encoding.UTF8.GetBytes(Vp(i)), MqttQos.AtLeastOnce, cancellationToken: Ct);
                if (i == 24)
                {
                    // Refused by the parser: counted by reason, not emitted.
                    await publisher.EnqueuePublishAsync(VpTopic, "{\"VP\":{"u8.ToArray(), MqttQos.AtLeastOnce, cancellationToken: Ct);
                }
            }

            await publisher.EnqueuePublishAsync(VpTopic, Encoding.UTF8.GetBytes(Vp(50)), MqttQos.AtLeastOnce, cancellationToken: Ct);
            await publisher.WhenAllAcknowledgedAsync(Ct);
        }

        var events = await received.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(51, events.Count);
        Assert.All(events, e => Assert.Equal("0018/00679", e.VehicleId));
        Assert.Equal(Enumerable.Range(0, 51).Select(i => i + 0.5f), events.Select(e => e.Speed));
        Assert.Equal(1, hfp.Rejections.Total);
        Assert.Null(health.LastError);
    }

    [Fact]
    public async Task Mqtt_WrongPassword_ReportsEachFailureAndRetriesWithBackoff()
    {
        Assert.SkipUnless(Mosquitto.IsInstalled, "mosquitto is not installed (./test.sh installs it)");
        await using var broker = await Mosquitto.StartAsync(new MosquittoOptions { Users = new Dictionary<string, string> { ["fleet"] = "right" } });
        var health = new RecordingHealth();
        var settings = new MqttSourceSettings
        {
            Client = new MqttClientOptions { Server = broker.Url, UserName = "fleet", Password = "wrong" },
            Filters = ["#"],
            MinBackoff = TimeSpan.FromMilliseconds(50),
            MaxBackoff = TimeSpan.FromMilliseconds(200),
        };
        var kill = MqttSources.Subscribe(settings, health, NullLoggerFactory.Instance)
            .ViaMaterialized(KillSwitches.Single<MqttMessage>(), Keep.Right)
            .To(Sink.Ignore<MqttMessage>())
            .Run(_materializer);

        await WaitUntilAsync(() => health.Failures >= 3, "three failed connections");
        kill.Shutdown();
        Assert.Contains("not authorized", health.LastError, StringComparison.Ordinal);
        Assert.Contains("reconnecting", health.States);
        Assert.DoesNotContain("connected", health.States);
    }

    [Fact]
    public async Task Mqtt_BrokerRestarts_TheSourceResubscribesAndReceivesAgain()
    {
        Assert.SkipUnless(Mosquitto.IsInstalled, "mosquitto is not installed (./test.sh installs it)");
        await using var broker = await Mosquitto.StartAsync();
        var health = new RecordingHealth();
        var settings = new MqttSourceSettings
        {
            Client = new MqttClientOptions { Server = broker.Url },
            Filters = ["fleet/#"],
            MinBackoff = TimeSpan.FromMilliseconds(100),
            MaxBackoff = TimeSpan.FromSeconds(1),
        };
        var topics = new ConcurrentQueue<string>();
        var kill = MqttSources.Subscribe(settings, health, NullLoggerFactory.Instance)
            .ViaMaterialized(KillSwitches.Single<MqttMessage>(), Keep.Right)
            .To(Sink.ForEach<MqttMessage>(m => topics.Enqueue(Encoding.UTF8.GetString(m.TopicUtf8.Span))))
            .Run(_materializer);
        await WaitUntilAsync(() => health.State == "connected", "connected");
        await PublishAsync(broker.Url, "fleet/before");
        await WaitUntilAsync(() => topics.Contains("fleet/before"), "the first message");

        await broker.RestartAsync();
        await WaitUntilAsync(() => health.States.Contains("reconnecting") && health.State == "connected", "connected again");
        await PublishAsync(broker.Url, "fleet/after");
        await WaitUntilAsync(() => topics.Contains("fleet/after"), "a message after the restart");
        kill.Shutdown();
    }

    [Fact]
    public async Task GtfsRt_Poll_EmitsNewSnapshotsOnlyAndReportsFailures()
    {
        var handler = new ScriptedHandler(
            Snapshot(1),
            new HttpResponseMessage(HttpStatusCode.NotModified),
            new HttpResponseMessage(HttpStatusCode.InternalServerError),
            new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent("not a feed"u8.ToArray()) },
            Snapshot(2));
        using var http = new HttpClient(handler);
        var poller = new GtfsRtPoller(http, new GtfsRtPollerOptions { Url = new Uri("http://feed.test/rt"), Interval = TimeSpan.FromMilliseconds(10), MaxBackoff = TimeSpan.FromMilliseconds(20) },
            TimeProvider.System, NullLogger<GtfsRtPoller>.Instance);
        var health = new RecordingHealth();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var feeds = await GtfsRtSources.Poll("test", poller, health, TimeProvider.System, stop.Token)
            .Via(GtfsRtSources.Decode("test", health))
            .Take(2)
            .RunWith(Sink.Seq<GtfsRtFeed>(), _materializer)
            .WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.Equal([1UL, 2UL], feeds.Select(f => f.Feed.Header.Timestamp));
        Assert.Equal(1, health.Failures); // the 500
        Assert.Equal(1, health.Rejected("GtfsRtUndecodable")); // the 200 that is not a feed
        Assert.Equal(5, handler.Requests);
    }

    [Fact]
    public async Task GtfsRt_Poll_CompletesWhenStopped()
    {
        var handler = new ScriptedHandler();
        using var http = new HttpClient(handler);
        var poller = new GtfsRtPoller(http, new GtfsRtPollerOptions { Url = new Uri("http://feed.test/rt"), Interval = TimeSpan.FromMilliseconds(10) },
            TimeProvider.System, NullLogger<GtfsRtPoller>.Instance);
        using var stop = new CancellationTokenSource();
        var done = GtfsRtSources.Poll("test", poller, new RecordingHealth(), TimeProvider.System, stop.Token)
            .RunWith(Sink.Seq<GtfsRtSnapshot>(), _materializer);
        await WaitUntilAsync(() => handler.Requests >= 2, "two polls");

        await stop.CancelAsync();

        Assert.Empty(await done.WaitAsync(TimeSpan.FromSeconds(10), Ct));
    }

    [Fact]
    public async Task Recording_Events_FromALine_WithLineNumbersAndRejectionsCounted()
    {
        var path = Path.Combine(Path.GetTempPath(), $"fleet-rec-{Guid.NewGuid():N}.hfp");
        var lines = Enumerable.Range(0, 6).Select(i => $"2023-10-29T19:46:{i:00}.500Z {VpTopic} {Vp(i)}").ToList();
        lines.Insert(3, "not a recording line");
        await File.WriteAllLinesAsync(path, lines, Ct);
        try
        {
            var hfp = new HfpStream();
            var events = await RecordingSources.Events(path, hfp, afterLine: 2)
                .RunWith(Sink.Seq<RecordedEvent>(), _materializer)
                .WaitAsync(TimeSpan.FromSeconds(30), Ct);

            // Lines 3..7: line 4 is malformed (counted, skipped); the others are events 2..5.
            Assert.Equal([3L, 5, 6, 7], events.Select(e => e.Line));
            Assert.Equal([2.5f, 3.5f, 4.5f, 5.5f], events.Select(e => e.Event.Speed));
            Assert.Equal(new DateTime(2023, 10, 29, 19, 46, 2, 500, DateTimeKind.Utc), events[0].Recorded);
            Assert.Equal(1, hfp.Rejections.Total);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Recording_Lines_EveryLineWithItsOutcome_FromAPosition()
    {
        var path = Path.Combine(Path.GetTempPath(), $"fleet-rec-{Guid.NewGuid():N}.hfp");
        var t0 = new DateTime(2023, 10, 29, 19, 46, 0, DateTimeKind.Utc);
        var snapshot = new FeedMessage { Header = new FeedHeader { GtfsRealtimeVersion = "2.0", Timestamp = 1698608760 } }.ToByteArray();
        using (var writer = Fleet.Ingest.Recording.RecordingWriter.Create(path))
        {
            for (var i = 0; i < 2000; i++)
            {
                if (i == 4)
                {
                    writer.WriteGtfsRt(t0.AddSeconds(i), "trip-updates", snapshot);
                }
                else
                {
                    writer.Write(t0.AddSeconds(i), VpTopic, Encoding.UTF8.GetBytes(i == 6 ? "{\"VP\":{\"spd\":\"fast\"}}" : Vp(i)));
                }
            }
        }

        await File.AppendAllLinesAsync(path, ["not a recording line"], Ct);
        try
        {
            var hfp = new HfpStream();
            var all = await RecordingSources.Lines(path, hfp).RunWith(Sink.Seq<RecordedLine>(), _materializer).WaitAsync(TimeSpan.FromSeconds(30), Ct);

            // Every line with a receive time, in order, with what the parser made of it; the malformed last line counted.
            Assert.Equal(Enumerable.Range(1, 2000).Select(i => (long)i), all.Select(l => l.Line));
            Assert.Equal(HfpOutcome.GtfsRt, all[4].Outcome);
            Assert.Equal(snapshot, all[4].GtfsRt);
            Assert.Equal(HfpOutcome.Event, all[3].Outcome);
            Assert.Equal(3.5f, all[3].Event.Speed);
            Assert.NotEqual(HfpOutcome.Event, all[6].Outcome);
            Assert.Equal(t0.AddSeconds(1999), all[^1].Recorded);
            Assert.Equal(2, hfp.Rejections.Total); // the refused VP and the malformed line
            Assert.True(all.Zip(all.Skip(1)).All(p => p.First.Progress <= p.Second.Progress) && all[^1].Progress > 0.9);

            // From half the file (progress moves as the reader's buffer fills): the first line at or past it, on to the end.
            var half = await RecordingSources.Lines(path, new HfpStream(), 0.5).RunWith(Sink.Seq<RecordedLine>(), _materializer)
                .WaitAsync(TimeSpan.FromSeconds(30), Ct);
            Assert.InRange(half[0].Line, 500, 1500);
            Assert.Equal(all.First(l => l.Progress >= 0.5).Line, half[0].Line);
            Assert.Equal(2000, half[^1].Line);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Recording_Paced_HoldsEachEventUntilItsRecordedOffsetAtTheSpeed()
    {
        var t0 = new DateTime(2026, 3, 2, 6, 0, 0, DateTimeKind.Utc);
        var recorded = Enumerable.Range(0, 4).Select(i => new RecordedEvent(default, i + 1, t0.AddSeconds(i * 2))).ToList();
        var started = DateTime.UtcNow;
        var passed = new ConcurrentQueue<TimeSpan>();

        await Source.From(recorded)
            .Via(RecordingSources.Paced(20, TimeProvider.System)) // 2 s apart recorded: 100 ms apart at 20x
            .RunForeach(_ => passed.Enqueue(DateTime.UtcNow - started), _materializer)
            .WaitAsync(TimeSpan.FromSeconds(30), Ct);

        var at = passed.ToArray();
        Assert.Equal(4, at.Length);
        for (var i = 1; i < at.Length; i++)
        {
            // Never early (a loaded machine may make it late).
            Assert.True(at[i] >= TimeSpan.FromMilliseconds((i * 100) - 10), $"event {i} passed at {at[i].TotalMilliseconds} ms");
        }
    }

    private static HttpResponseMessage Snapshot(ulong timestamp)
    {
        var feed = new FeedMessage { Header = new FeedHeader { GtfsRealtimeVersion = "2.0", Timestamp = timestamp } };
        return new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(feed.ToByteArray()) };
    }

    private static async Task PublishAsync(Uri broker, string topic)
    {
        await using var publisher = new MqttClient(new MqttClientOptions { Server = broker });
        await publisher.ConnectAsync(Ct);
        await publisher.EnqueuePublishAsync(topic, "x"u8.ToArray(), MqttQos.AtLeastOnce, cancellationToken: Ct);
        await publisher.WhenAllAcknowledgedAsync(Ct);
        await publisher.DisconnectAsync();
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var until = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, $"timed out waiting for {what}");
            await Task.Delay(20, Ct);
        }
    }

    // Answers each request with the next scripted response; after the script, 304 Not Modified.
    private sealed class ScriptedHandler(params HttpResponseMessage[] responses) : HttpMessageHandler
    {
        private int _requests;

        public int Requests => Volatile.Read(ref _requests);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var i = Interlocked.Increment(ref _requests) - 1;
            return Task.FromResult(i < responses.Length ? responses[i] : new HttpResponseMessage(HttpStatusCode.NotModified));
        }
    }

    private sealed class RecordingHealth : ISourceHealth
    {
        private readonly ConcurrentQueue<string> _states = new();
        private readonly ConcurrentDictionary<string, int> _rejected = new();
        private int _failures;
        private volatile string? _state;
        private volatile string? _lastError;

        public string? State => _state;

        public IReadOnlyCollection<string> States => _states;

        public int Failures => Volatile.Read(ref _failures);

        public string? LastError => _lastError;

        public int Rejected(string reason) => _rejected.GetValueOrDefault(reason);

        public void ReportState(string state, bool connected)
        {
            _state = state;
            _states.Enqueue(state);
        }

        public void ReportFailure(string reason)
        {
            _lastError = reason;
            Interlocked.Increment(ref _failures);
        }

        public void ReportRecovered() => _lastError = null;

        public void ReportRejected(string reason, string detail)
        {
            _rejected.AddOrUpdate(reason, 1, (_, n) => n + 1);
            _lastError = detail;
        }
    }
}
