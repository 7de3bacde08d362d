using System.Buffers.Binary;
using System.Text;
using Fleet.Mqtt.Tests.Support;
using Fleet.Testing;

namespace Fleet.Mqtt.Tests;

/// <summary>Byte-level protocol behaviour against a scripted fake broker.</summary>
public sealed class MqttProtocolTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Connect_Credentials_SendsConnectWithFlagsKeepAliveAndPayload()
    {
        await using var broker = FakeBroker.Start();
        await using var client = new MqttClient(new MqttClientOptions
        {
            Server = broker.Url, ClientId = "veh-1", CleanSession = false, UserName = "user", Password = "pass", KeepAlive = TimeSpan.FromSeconds(45),
        });

        var connecting = client.ConnectAsync(TestContext.Current.CancellationToken);
        var connect = await broker.AcceptAsync(sessionPresent: true);
        var sessionPresent = await connecting.WaitAsync(Timeout, TestContext.Current.CancellationToken);

        Assert.True(sessionPresent);
        Assert.Equal(MqttClientState.Connected, client.State);
        Assert.Equal("MQTT"u8.ToArray(), connect.Body[2..6]);
        Assert.Equal(4, connect.Body[6]);
        Assert.Equal(0xC0, connect.Body[7]); // user name + password, persistent session (clean session bit clear)
        Assert.Equal(45, BinaryPrimitives.ReadUInt16BigEndian(connect.Body.AsSpan(8)));
        Assert.Equal("\0\u0005veh-1\0\u0004user\0\u0004pass", Encoding.ASCII.GetString(connect.Body, 10, connect.Body.Length - 10));
    }

    [Theory]
    [InlineData(1, MqttConnectReturnCode.UnacceptableProtocolVersion, "unacceptable protocol version")]
    [InlineData(2, MqttConnectReturnCode.IdentifierRejected, "identifier rejected")]
    [InlineData(3, MqttConnectReturnCode.ServerUnavailable, "server unavailable")]
    [InlineData(4, MqttConnectReturnCode.BadUserNameOrPassword, "bad user name or password")]
    [InlineData(5, MqttConnectReturnCode.NotAuthorized, "not authorized")]
    public async Task Connect_RefusedByConnAck_ThrowsWithReturnCodeByName(byte code, MqttConnectReturnCode expected, string words)
    {
        await using var broker = FakeBroker.Start();
        await using var client = new MqttClient(new MqttClientOptions { Server = broker.Url });

        var connecting = client.ConnectAsync(TestContext.Current.CancellationToken);
        await broker.AcceptAsync(returnCode: code);
        var ex = await Assert.ThrowsAsync<MqttConnectException>(() => connecting.WaitAsync(Timeout, TestContext.Current.CancellationToken));

        Assert.Equal(expected, ex.ReturnCode);
        Assert.Contains(words, ex.Message, StringComparison.Ordinal);
        Assert.Contains(broker.Url.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), ex.Message, StringComparison.Ordinal);
        Assert.Equal(code == 3, ex.IsTransient);
    }

    [Fact]
    public async Task KeepAlive_IdleHalfInterval_SendsPingReq()
    {
        var time = new FakeTimeProvider();
        await using var broker = FakeBroker.Start();
        await using var client = new MqttClient(new MqttClientOptions { Server = broker.Url, KeepAlive = TimeSpan.FromSeconds(10), TimeProvider = time });
        await ConnectAsync(client, broker);

        time.Advance(TimeSpan.FromSeconds(5));
        var ping = await broker.ReadPacketAsync("PINGREQ after 5 s idle");
        await broker.SendAsync(0xD0, 0x00);

        Assert.Equal(12, ping.Type);
        Assert.Empty(ping.Body);
        Assert.Equal(MqttClientState.Connected, client.State);
    }

    [Fact]
    public async Task KeepAlive_NoPingResp_BreaksWithTransientTimeout()
    {
        var time = new FakeTimeProvider();
        await using var broker = FakeBroker.Start();
        await using var client = new MqttClient(new MqttClientOptions
        {
            Server = broker.Url, KeepAlive = TimeSpan.FromSeconds(10), TimeProvider = time, AutoReconnect = false,
        });
        await ConnectAsync(client, broker);

        // The broker stays silent. Timer ticks every 5 s; at 15 s (1.5 x keep-alive) without a byte, the client breaks.
        time.Advance(TimeSpan.FromSeconds(5));
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(MqttClientState.Connected, client.State);
        time.Advance(TimeSpan.FromSeconds(5));

        var ex = await Assert.ThrowsAsync<MqttException>(() => client.Completion.WaitAsync(Timeout, TestContext.Current.CancellationToken));
        Assert.Contains("keep-alive timeout", ex.Message, StringComparison.Ordinal);
        Assert.True(ex.IsTransient);
        Assert.Equal(MqttClientState.Faulted, client.State);
    }

    [Fact]
    public async Task Receive_Qos1_PubAckOnlyAfterConsumerChannelAcceptedMessage()
    {
        await using var broker = FakeBroker.Start();
        // The fake broker does not close the connection after DISCONNECT: do not wait 10 s for it at dispose.
        await using var client = new MqttClient(new MqttClientOptions { Server = broker.Url, ReceiveCapacity = 1, DisconnectTimeout = TimeSpan.FromMilliseconds(500) });
        await ConnectAsync(client, broker);

        for (ushort id = 1; id <= 3; id++)
        {
            await broker.SendPublishAsync("t", [(byte)('0' + id)], qos: 1, packetId: id);
        }

        // Channel capacity 1: message 1 fits, so PUBACK 1 comes; message 2 waits until the test reads message 1.
        for (ushort id = 1; id <= 3; id++)
        {
            var ack = await broker.ReadPacketAsync($"PUBACK {id}");
            Assert.Equal(4, ack.Type);
            Assert.Equal(id, BinaryPrimitives.ReadUInt16BigEndian(ack.Body));
            Assert.True(client.Statistics.MessagesReceived >= id, $"PUBACK {id} sent before message {id} reached the channel");

            var message = await client.Messages.ReadAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(Timeout, TestContext.Current.CancellationToken);
            Assert.Equal([(byte)('0' + id)], message.Payload.ToArray());
            Assert.Equal(MqttQos.AtLeastOnce, message.Qos);
        }
    }

    [Fact]
    public async Task Receive_MalformedRemainingLength_FaultsWithProtocolError()
    {
        await using var broker = FakeBroker.Start();
        await using var client = new MqttClient(new MqttClientOptions { Server = broker.Url });
        await ConnectAsync(client, broker);

        await broker.SendAsync(0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F);

        var ex = await Assert.ThrowsAsync<MqttProtocolException>(() => client.Completion.WaitAsync(Timeout, TestContext.Current.CancellationToken));
        Assert.Contains("remaining length", ex.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<MqttProtocolException>(async () =>
        {
            await foreach (var _ in client.Messages.ReadAllAsync(TestContext.Current.CancellationToken))
            {
            }
        });
    }

    [Fact]
    public async Task Receive_PacketOverMaximum_FaultsWithSizesInMessage()
    {
        await using var broker = FakeBroker.Start();
        await using var client = new MqttClient(new MqttClientOptions { Server = broker.Url, MaxPacketSize = 1024 });
        await ConnectAsync(client, broker);

        await broker.SendPublishAsync("ok", [1, 2, 3], qos: 0, packetId: 0);
        await broker.SendPublishAsync("big", new byte[2000], qos: 0, packetId: 0);

        var ex = await Assert.ThrowsAsync<MqttPacketTooLargeException>(() => client.Completion.WaitAsync(Timeout, TestContext.Current.CancellationToken));
        Assert.Equal(1 + 2 + 2 + 3 + 2000, ex.PacketSize);
        Assert.Contains("exceeds the maximum packet size of 1024 bytes", ex.Message, StringComparison.Ordinal);
        var first = await client.Messages.ReadAsync(TestContext.Current.CancellationToken);
        Assert.Equal("ok", first.Topic);
    }

    [Fact]
    public async Task Receive_ConsumerFull_StopsReadingSocketAndLosesNothing()
    {
        const int Messages = 1000;
        const int PayloadBytes = 32 * 1024;
        await using var broker = FakeBroker.Start();
        await using var client = new MqttClient(new MqttClientOptions { Server = broker.Url, ReceiveCapacity = 8 });
        await ConnectAsync(client, broker);

        // 32 MB, far more than the socket buffers of both ends can hold: the write can only finish if the client reads.
        var writing = Task.Run(async () =>
        {
            for (var i = 0; i < Messages; i++)
            {
                var payload = new byte[PayloadBytes];
                BinaryPrimitives.WriteInt32BigEndian(payload, i);
                await broker.SendPublishAsync("bp", payload, qos: 0, packetId: 0);
            }
        }, TestContext.Current.CancellationToken);

        // Poll with a deadline: the channel fills as the socket delivers.
        var deadline = DateTime.UtcNow + Timeout;
        while (client.Messages.Count < 8)
        {
            Assert.True(DateTime.UtcNow < deadline, $"receive channel did not fill up (count {client.Messages.Count})");
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }

        // Bounded: the channel (8 packets), one packet held by the parked reader and the read buffer (<= 2 packets).
        var read = client.Statistics.BytesReceived;
        Assert.True(read <= 12L * (PayloadBytes + 16), $"client read {read} bytes while its consumer was full");
        Assert.False(writing.IsCompleted, "the broker wrote 32 MB although the client's consumer was full");

        for (var i = 0; i < Messages; i++)
        {
            var message = await client.Messages.ReadAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(Timeout, TestContext.Current.CancellationToken);
            Assert.Equal(i, BinaryPrimitives.ReadInt32BigEndian(message.Payload.Span));
        }

        await writing.WaitAsync(Timeout, TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Publish_Qos1_CompletesOnlyOnPubAckAndResendsWithDupAfterReconnect()
    {
        await using var broker = FakeBroker.Start();
        await using var client = new MqttClient(new MqttClientOptions
        {
            Server = broker.Url, ClientId = "p", CleanSession = false, ReconnectMinDelay = TimeSpan.Zero, ReconnectMaxDelay = TimeSpan.Zero,
        });
        await ConnectAsync(client, broker);

        var acked = await client.EnqueuePublishAsync("out", "x"u8.ToArray(), MqttQos.AtLeastOnce, cancellationToken: TestContext.Current.CancellationToken);
        var first = await broker.ReadPacketAsync("PUBLISH");
        Assert.Equal(3, first.Type);
        Assert.Equal(0x02, first.Flags); // QoS 1, no DUP yet
        Assert.False(acked.IsCompleted);

        // Drop the connection without acknowledging; the client reconnects and resends with DUP.
        await broker.DropClientAsync();
        await broker.AcceptAsync(sessionPresent: true);
        var resent = await broker.ReadPacketAsync("resent PUBLISH");
        Assert.Equal(0x0A, resent.Flags); // DUP + QoS 1
        Assert.Equal(first.Body, resent.Body);
        Assert.False(acked.IsCompleted);

        await broker.SendAsync(0x40, 0x02, resent.Body[5], resent.Body[6]); // PUBACK with the packet id after topic "out"
        await acked.WaitAsync(Timeout, TestContext.Current.CancellationToken);
        Assert.Equal(1, client.Statistics.Reconnects);
    }

    private static async Task ConnectAsync(MqttClient client, FakeBroker broker)
    {
        var connecting = client.ConnectAsync(TestContext.Current.CancellationToken);
        await broker.AcceptAsync();
        await connecting.WaitAsync(Timeout, TestContext.Current.CancellationToken);
    }
}
