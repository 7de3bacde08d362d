using System.Buffers.Binary;
using System.Text;
using Fleet.Testing;

namespace Fleet.Mqtt.Tests;

/// <summary>One anonymous mosquitto shared by the tests of <see cref="MosquittoTests"/>.</summary>
public sealed class MosquittoFixture : IAsyncLifetime
{
    public Mosquitto Broker { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Broker = await Mosquitto.StartAsync(new MosquittoOptions { MaxInflightMessages = 100 });

    public async ValueTask DisposeAsync() => await Broker.DisposeAsync();
}

/// <summary>The client against a real mosquitto (Debian package) on loopback.</summary>
[Trait("Category", "Integration")]
public sealed class MosquittoTests(MosquittoFixture fixture) : IClassFixture<MosquittoFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(45);

    /// <summary>Per test (xunit makes an instance per test): keeps client ids unique on the shared broker.</summary>
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..6];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Receive_100kQos1Messages_NoneLostOrDuplicatedAndInOrderPerTopic()
    {
        const int Total = 100_000;
        const int Topics = 4;
        await using var subscriber = new MqttClient(Options("load-sub"));
        await subscriber.ConnectAsync(Ct);
        Assert.Equal(MqttQos.AtLeastOnce, await subscriber.SubscribeAsync("load/+", MqttQos.AtLeastOnce, Ct));
        await using var publisher = new MqttClient(Options("load-pub"));
        await publisher.ConnectAsync(Ct);

        var publishing = Task.Run(async () =>
        {
            var acks = new List<Task>(Total);
            var payload = new byte[8];
            for (var i = 0; i < Total; i++)
            {
                // Payload: the sequence number within its topic.
                BinaryPrimitives.WriteInt64BigEndian(payload, i / Topics);
                acks.Add(await publisher.EnqueuePublishAsync($"load/{i % Topics}", payload, MqttQos.AtLeastOnce, cancellationToken: Ct));
            }

            await Task.WhenAll(acks);
        }, Ct);

        var next = new long[Topics];
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(Timeout);
        var received = 0;
        try
        {
            while (received < Total)
            {
                var m = await subscriber.Messages.ReadAsync(deadline.Token);
                var topic = m.Topic[^1] - '0';
                var seq = BinaryPrimitives.ReadInt64BigEndian(m.Payload.Span);
                Assert.True(seq == next[topic], $"topic {m.Topic}: got #{seq}, expected #{next[topic]} (lost, duplicated or reordered)");
                next[topic]++;
                received++;
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !Ct.IsCancellationRequested)
        {
            Assert.Fail($"received {received} of {Total} messages within {Timeout.TotalSeconds} s");
        }

        await publishing.WaitAsync(Timeout, Ct);
        Assert.Equal(Total, publisher.Statistics.PublishesAcknowledged);
        Assert.All(next, n => Assert.Equal(Total / Topics, n));
        Assert.False(subscriber.Messages.TryRead(out var extra), $"unexpected extra message on {extra.Topic}");
    }

    [Fact]
    public async Task Subscribe_Wildcards_DeliverExactlyTheMatchingTopics()
    {
        await using var subscriber = new MqttClient(Options("wild-sub"));
        await subscriber.ConnectAsync(Ct);
        await subscriber.SubscribeAsync([new("w/+/pos"), new("w/a/#")], Ct);
        await using var publisher = new MqttClient(Options("wild-pub"));
        await publisher.ConnectAsync(Ct);

        // Chosen so no topic matches both filters (mosquitto would deliver it twice).
        string[] published = ["w/x/pos", "w/x/speed", "w/a", "w/a/b/c", "w/b/pos/extra", "x/w/pos", "w/y/pos", "w/a/b", "w/end/pos"];
        foreach (var topic in published)
        {
            await publisher.PublishAsync(topic, Encoding.UTF8.GetBytes(topic), MqttQos.AtLeastOnce, cancellationToken: Ct);
        }

        // By hand from section 4.7: '+' matches exactly one level, 'w/a/#' matches w/a itself and everything below.
        string[] expected = ["w/x/pos", "w/a", "w/a/b/c", "w/y/pos", "w/a/b", "w/end/pos"];
        var got = await ReadTopicsAsync(subscriber, expected.Length);
        Assert.Equal(expected, got);

        await subscriber.UnsubscribeAsync(["w/+/pos"], Ct);
        await publisher.PublishAsync("w/z/pos", "gone"u8.ToArray(), MqttQos.AtLeastOnce, cancellationToken: Ct);
        await publisher.PublishAsync("w/a/after", "kept"u8.ToArray(), MqttQos.AtLeastOnce, cancellationToken: Ct);
        Assert.Equal(["w/a/after"], await ReadTopicsAsync(subscriber, 1));
    }

    [Fact]
    public async Task PersistentSession_Qos1PublishedWhileAway_ArrivesAfterReconnect()
    {
        const int Count = 1000;
        await using (var first = new MqttClient(Options("away-sub", cleanSession: false)))
        {
            await first.ConnectAsync(Ct);
            await first.SubscribeAsync("away/#", MqttQos.AtLeastOnce, Ct);
            await first.DisconnectAsync();
        }

        await using var publisher = new MqttClient(Options("away-pub"));
        await publisher.ConnectAsync(Ct);
        for (var i = 0; i < Count; i++)
        {
            await publisher.PublishAsync($"away/{i}", Encoding.UTF8.GetBytes(i.ToString(System.Globalization.CultureInfo.InvariantCulture)), MqttQos.AtLeastOnce, cancellationToken: Ct);
        }

        await using var again = new MqttClient(Options("away-sub", cleanSession: false));
        var sessionPresent = await again.ConnectAsync(Ct);

        Assert.True(sessionPresent, "mosquitto should have kept the persistent session");
        var topics = await ReadTopicsAsync(again, Count);
        Assert.Equal(Enumerable.Range(0, Count).Select(i => $"away/{i}"), topics);
    }

    [Fact]
    public async Task Disconnect_RightAfterReadingEveryQueuedMessage_BrokerRedeliversNone()
    {
        // A persistent session drained in one go and then disconnected at once, as `fleet bench mqtt` does each round:
        // every message the application read must have been acknowledged before DISCONNECT. The client used to drop
        // DISCONNECT (and close the socket) when its outbox was full of PUBACKs, so the broker kept thousands of
        // read messages and redelivered them on the next connection.
        const int Count = 20_000;
        await using (var first = new MqttClient(Options("ack-sub", cleanSession: false)))
        {
            await first.ConnectAsync(Ct);
            await first.SubscribeAsync("ack/#", MqttQos.AtLeastOnce, Ct);
            await first.DisconnectAsync();
        }

        await using var publisher = new MqttClient(new MqttClientOptions { Server = fixture.Broker.Url, MaxInflight = 1000 });
        await publisher.ConnectAsync(Ct);
        var payload = new byte[200];
        for (var i = 0; i < Count; i++)
        {
            await publisher.EnqueuePublishAsync("ack/m", payload, MqttQos.AtLeastOnce, cancellationToken: Ct);
        }

        await publisher.WhenAllAcknowledgedAsync(Ct).WaitAsync(Timeout, Ct);

        await using (var drain = new MqttClient(Options("ack-sub", cleanSession: false)))
        {
            Assert.True(await drain.ConnectAsync(Ct), "mosquitto should have kept the persistent session");
            Assert.Equal(Count, (await ReadTopicsAsync(drain, Count)).Count);
            await drain.DisconnectAsync();
        }

        // Whatever the broker still holds for the session arrives on reconnect before a message published afterwards.
        await using var again = new MqttClient(Options("ack-sub", cleanSession: false));
        await again.ConnectAsync(Ct);
        await publisher.PublishAsync("ack/marker", "end"u8.ToArray(), MqttQos.AtLeastOnce, cancellationToken: Ct);
        var redelivered = 0;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(Timeout);
        try
        {
            while ((await again.Messages.ReadAsync(deadline.Token)).Topic != "ack/marker")
            {
                redelivered++;
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !Ct.IsCancellationRequested)
        {
            Assert.Fail($"the marker did not arrive within {Timeout.TotalSeconds} s ({redelivered} messages before it)");
        }

        Assert.True(redelivered == 0, $"the broker redelivered {redelivered} of the {Count} messages that were read before DisconnectAsync");
    }

    [Fact]
    public async Task Receive_MessageOverMaxPacketSize_FaultsWithClearError()
    {
        await using var subscriber = new MqttClient(new MqttClientOptions { Server = fixture.Broker.Url, ClientId = "big-sub", MaxPacketSize = 64 * 1024 });
        await subscriber.ConnectAsync(Ct);
        await subscriber.SubscribeAsync("big/#", MqttQos.AtLeastOnce, Ct);
        await using var publisher = new MqttClient(Options("big-pub"));
        await publisher.ConnectAsync(Ct);

        await publisher.PublishAsync("big/small", new byte[100], MqttQos.AtLeastOnce, cancellationToken: Ct);
        await publisher.PublishAsync("big/large", new byte[100_000], MqttQos.AtLeastOnce, cancellationToken: Ct);

        var ex = await Assert.ThrowsAsync<MqttPacketTooLargeException>(() => subscriber.Completion.WaitAsync(Timeout, Ct));
        Assert.Equal(65_536, ex.MaxPacketSize);
        Assert.True(ex.PacketSize > 100_000, $"announced size {ex.PacketSize}");
        Assert.Contains("exceeds the maximum packet size of 65536 bytes", ex.Message, StringComparison.Ordinal);
        Assert.Equal(MqttClientState.Faulted, subscriber.State);
        Assert.Equal("big/small", (await subscriber.Messages.ReadAsync(Ct)).Topic);
    }

    [Fact]
    public async Task Publish_OverMaxPacketSize_ThrowsBeforeSending()
    {
        await using var publisher = new MqttClient(new MqttClientOptions { Server = fixture.Broker.Url, MaxPacketSize = 1024 });
        await publisher.ConnectAsync(Ct);

        var ex = await Assert.ThrowsAsync<ArgumentException>(() => publisher.PublishAsync("t", new byte[2000], MqttQos.AtLeastOnce, cancellationToken: Ct));

        Assert.Contains("exceeds the maximum packet size of 1024 bytes", ex.Message, StringComparison.Ordinal);
        Assert.Equal(MqttClientState.Connected, publisher.State);
    }

    private MqttClientOptions Options(string clientId, bool cleanSession = true) => new()
    {
        Server = fixture.Broker.Url,
        ClientId = clientId + "-" + _suffix,
        CleanSession = cleanSession,
    };

    internal static async Task<List<string>> ReadTopicsAsync(MqttClient client, int count)
    {
        var topics = new List<string>();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(Timeout);
        try
        {
            while (topics.Count < count)
            {
                topics.Add((await client.Messages.ReadAsync(deadline.Token)).Topic);
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !Ct.IsCancellationRequested)
        {
            Assert.Fail($"received {topics.Count} of {count} messages within {Timeout.TotalSeconds} s: {string.Join(", ", topics)}");
        }

        return topics;
    }
}
