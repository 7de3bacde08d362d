using System.Buffers.Binary;
using Fleet.Testing;

namespace Fleet.Mqtt.Tests;

/// <summary>Tests that need a broker of their own: restarts and authentication.</summary>
[Trait("Category", "Integration")]
public sealed class MosquittoRestartTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(45);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task BrokerRestart_MidStream_PersistentSessionLosesNothing()
    {
        const int Total = 20_000;
        await using var broker = await Mosquitto.StartAsync();
        MqttClientOptions Options(string id) => new()
        {
            Server = broker.Url,
            ClientId = id,
            CleanSession = false,
            ReconnectMinDelay = TimeSpan.FromMilliseconds(50),
            ReconnectMaxDelay = TimeSpan.FromMilliseconds(400),
        };

        await using var subscriber = new MqttClient(Options("restart-sub"));
        await subscriber.ConnectAsync(Ct);
        await subscriber.SubscribeAsync("restart/#", MqttQos.AtLeastOnce, Ct);
        await using var publisher = new MqttClient(Options("restart-pub"));
        await publisher.ConnectAsync(Ct);

        // The publisher holds its second half until the broker has restarted, so the restart always falls in the middle
        // of both streams (without the gate a fast publisher could finish before it, with nothing left to resend).
        var restartDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var publishing = Task.Run(async () =>
        {
            var acks = new List<Task>(Total);
            var payload = new byte[4];
            for (var i = 0; i < Total; i++)
            {
                if (i == Total / 2)
                {
                    await restartDone.Task.WaitAsync(Ct);
                }

                BinaryPrimitives.WriteInt32BigEndian(payload, i);
                acks.Add(await publisher.EnqueuePublishAsync("restart/seq", payload, MqttQos.AtLeastOnce, cancellationToken: Ct));
            }

            await Task.WhenAll(acks);
        }, Ct);

        // mosquitto keeps persistent sessions and their queued messages in memory and writes them to its database on
        // SIGTERM; a SIGKILL would lose what arrived since the last autosave, which no client can recover.
        var seen = new bool[Total];
        var distinct = 0;
        var duplicates = 0;
        var restarted = false;
        var receivedBeforeRestart = 0L;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(Timeout);
        try
        {
            while (distinct < Total)
            {
                var m = await subscriber.Messages.ReadAsync(deadline.Token);
                var seq = BinaryPrimitives.ReadInt32BigEndian(m.Payload.Span);
                if (seen[seq])
                {
                    duplicates++; // allowed by QoS 1 (a PUBACK lost in the restart)
                }
                else
                {
                    seen[seq] = true;
                    distinct++;
                }

                if (!restarted && distinct == Total / 4)
                {
                    restarted = true;
                    receivedBeforeRestart = subscriber.Statistics.MessagesReceived;
                    await broker.RestartAsync();
                    restartDone.SetResult();
                }
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !Ct.IsCancellationRequested)
        {
            var missing = Enumerable.Range(0, Total).Where(i => !seen[i]).Take(10);
            Assert.Fail($"received {distinct} of {Total} distinct messages within {Timeout.TotalSeconds} s (state {subscriber.State}); " +
                $"first missing: {string.Join(", ", missing)}; broker log:\n{broker.Log}");
        }

        await publishing.WaitAsync(Timeout, Ct);
        Assert.True(restarted);
        Assert.True(subscriber.Statistics.Reconnects >= 1, "the subscriber never reconnected");
        Assert.True(publisher.Statistics.Reconnects >= 1, "the publisher never reconnected");
        // QoS 1 lets the broker redeliver what it delivered but had not yet processed the PUBACK of when it stopped
        // (mosquitto reads a client's packets one per pass, so thousands of PUBACKs can still be unread), and the
        // publisher resend its unacknowledged window. Anything beyond what had been delivered before the restart,
        // plus the broker's in-flight window and the publisher's (256) with slack, was invented by the client.
        Assert.True(duplicates <= receivedBeforeRestart + 512,
            $"{duplicates} duplicates, with {receivedBeforeRestart} messages delivered before the restart");
    }

    [Fact]
    public async Task Connect_WrongPassword_FailsWithNamedReturnCode()
    {
        await using var broker = await Mosquitto.StartAsync(new MosquittoOptions { Users = new Dictionary<string, string> { ["fleet"] = "s3cret" } });

        await using var wrong = new MqttClient(new MqttClientOptions { Server = broker.Url, UserName = "fleet", Password = "nope" });
        var ex = await Assert.ThrowsAsync<MqttConnectException>(() => wrong.ConnectAsync(Ct));

        // mosquitto 2.0 answers a wrong password in MQTT 3.1.1 with return code 5.
        Assert.Equal(MqttConnectReturnCode.NotAuthorized, ex.ReturnCode);
        Assert.Contains("refused the connection: not authorized", ex.Message, StringComparison.Ordinal);
        Assert.False(ex.IsTransient);

        await using var anonymous = new MqttClient(new MqttClientOptions { Server = broker.Url });
        Assert.Equal(MqttConnectReturnCode.NotAuthorized, (await Assert.ThrowsAsync<MqttConnectException>(() => anonymous.ConnectAsync(Ct))).ReturnCode);

        await using var right = new MqttClient(new MqttClientOptions { Server = broker.Url, UserName = "fleet", Password = "s3cret" });
        await right.ConnectAsync(Ct);
        Assert.Equal(MqttClientState.Connected, right.State);
    }

    [Fact]
    public async Task Connect_NoBroker_FailsWithTransientErrorNamingTheAddress()
    {
        var port = FreePort.Next();
        await using var client = new MqttClient(new MqttClientOptions { Server = new Uri($"mqtt://127.0.0.1:{port}") });

        var ex = await Assert.ThrowsAsync<MqttException>(() => client.ConnectAsync(Ct));

        Assert.Contains($"cannot connect to MQTT broker mqtt://127.0.0.1:{port}", ex.Message, StringComparison.Ordinal);
        Assert.True(ex.IsTransient);
    }
}
