using System.Buffers;
using System.Buffers.Binary;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;

namespace Fleet.Mqtt.Internal;

/// <summary>
/// One TCP (or TLS) session with the broker: the CONNECT handshake, a reader loop, a writer loop and the keep-alive
/// timer. It lives until <see cref="Break"/>; the <see cref="MqttClient"/> then opens a new one.
/// </summary>
/// <remarks>
/// <code>
///   OpenAsync ──CONNACK 0──► Open ──Break(reason), exactly once──► Broken ──► (client reconnects with a new connection)
///       │ CONNACK ≠ 0, I/O error, timeout
///       └──────────────► MqttConnectException / MqttException thrown, nothing started
/// </code>
/// Every failure of any loop or of the timer goes through <see cref="Break"/>, which stores the first reason, closes
/// the stream (which ends the other loop), fails the SUBACK/UNSUBACK waiters and completes <see cref="Completion"/>
/// with that reason. Thread-safe: the reader loop, the writer loop, the timer and the client all call into it.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable",
    Justification = "Break is the one way to end a connection: it closes the stream; the reader loop returns the pooled buffer; the CTSs have no timer; the SemaphoreSlim's wait handle is never created.")]
internal sealed class MqttConnection
{
    private const int WriteBatchBytes = 64 * 1024;

    private readonly MqttClient _client;
    private readonly MqttClientOptions _options;
    private readonly Stream _stream;
    private readonly MqttReadBuffer _readBuffer;
    private readonly TimeProvider _timeProvider;
    private readonly CancellationTokenSource _cts = new();

    /// <summary>Cancelled by <see cref="DisconnectAsync"/> (and by <see cref="Break"/>): stops a delivery waiting for room.</summary>
    private readonly CancellationTokenSource _deliveryCts;

    /// <summary>
    /// Held by the reader loop from handing a message to the client until its PUBACK is queued, and taken for good by
    /// <see cref="DisconnectAsync"/> before it queues DISCONNECT: every message the application can have read is
    /// acknowledged before DISCONNECT, never after it.
    /// </summary>
    private readonly SemaphoreSlim _deliveryLock = new(1, 1);
    private bool _deliveryStopped;

    /// <summary>Whether a PUBACK was queued on this connection (then DisconnectAsync waits for the broker to close).</summary>
    private bool _acknowledgedAny;
    private readonly Channel<OutboxItem> _outbox;
    private readonly Dictionary<ushort, TaskCompletionSource<byte[]>> _pendingAcks = [];
    private readonly TaskCompletionSource<MqttException> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly PayloadArena _arena = new();
    private ITimer? _keepAliveTimer;
    private MqttException? _breakReason;
    private long _lastWrite;

    private MqttConnection(MqttClient client, MqttClientOptions options, Stream stream)
    {
        _client = client;
        _options = options;
        _stream = stream;
        _timeProvider = options.TimeProvider;
        _readBuffer = new MqttReadBuffer(stream, options.MaxPacketSize, options.TimeProvider);
        _deliveryCts = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);

        // Bounded: PUBACKs are limited by the broker's in-flight window, publishes by the client's window and the
        // senders wait here when the socket is slow.
        _outbox = Channel.CreateBounded<OutboxItem>(new BoundedChannelOptions(options.MaxInflight + 1024)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    /// <summary>Completes with the reason once the connection is broken.</summary>
    public Task<MqttException> Completion => _completion.Task;

    public bool IsBroken => Volatile.Read(ref _breakReason) is not null;

    /// <summary>Whether the broker still had a session for this client id.</summary>
    public bool SessionPresent { get; private set; }

    public long BytesRead => _readBuffer.BytesRead;

    /// <summary>Connects, performs the CONNECT/CONNACK handshake and starts the loops.</summary>
    /// <exception cref="MqttConnectException">The broker refused the connection.</exception>
    /// <exception cref="MqttException">TCP, TLS or the handshake failed or timed out.</exception>
    public static async Task<MqttConnection> OpenAsync(MqttClient client, MqttClientOptions options, string clientId, CancellationToken cancellationToken)
    {
        var broker = options.Describe();
        using var timeout = new CancellationTokenSource(options.ConnectTimeout, options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        var token = linked.Token;
        Stream? stream = null;
        try
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(options.Server.Host, options.Port, token).ConfigureAwait(false);
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            stream = new NetworkStream(socket, ownsSocket: true);
            if (options.UseTls)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = ssl;
                await ssl.AuthenticateAsClientAsync(CreateTlsOptions(options), token).ConfigureAwait(false);
            }

            var connection = new MqttConnection(client, options, stream);
            await connection.HandshakeAsync(clientId, token).ConfigureAwait(false);
            connection.Start();
            return connection;
        }
        catch (Exception ex)
        {
            if (stream is not null)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }

            throw ex switch
            {
                MqttException m => m,
                OperationCanceledException when cancellationToken.IsCancellationRequested => ex,
                OperationCanceledException => new MqttException(
                    $"MQTT broker {broker} did not complete the connection within {options.ConnectTimeout.TotalSeconds:0.###} s", true, ex),
                AuthenticationException => new MqttException($"TLS handshake with MQTT broker {broker} failed: {ex.Message}", false, ex),
                SocketException se => new MqttException($"cannot connect to MQTT broker {broker}: {se.Message} ({se.SocketErrorCode})", true, ex),
                IOException or EndOfStreamException => new MqttException($"MQTT broker {broker} closed the connection during CONNECT: {ex.Message}", true, ex),
                _ => ex,
            };
        }
    }

    /// <summary>Queues a packet for the writer loop, waiting while the outbox is full.</summary>
    /// <remarks>Does nothing once broken: QoS 1 publishes stay in the client's in-flight list and are resent later.</remarks>
    public ValueTask EnqueueAsync(OutboxItem item, CancellationToken cancellationToken)
    {
        if (_outbox.Writer.TryWrite(item))
        {
            return default;
        }

        return EnqueueSlowAsync(item, cancellationToken);
    }

    /// <summary>Sends SUBSCRIBE or UNSUBSCRIBE and waits for the matching acknowledgement's body.</summary>
    public async Task<byte[]> SendAndAwaitAckAsync(ushort packetId, byte[] packet, CancellationToken cancellationToken)
    {
        var ack = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_pendingAcks)
        {
            if (_breakReason is { } reason)
            {
                throw reason;
            }

            _pendingAcks.Add(packetId, ack);
        }

        await EnqueueAsync(OutboxItem.Raw(packet, packet.Length), cancellationToken).ConfigureAwait(false);
        return await ack.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public bool IsPendingAckId(ushort packetId)
    {
        lock (_pendingAcks)
        {
            return _pendingAcks.ContainsKey(packetId);
        }
    }

    /// <summary>
    /// Sends DISCONNECT after everything queued before it, waits until the broker closes the connection, and breaks it.
    /// </summary>
    /// <remarks>
    /// <para>The PUBACKs queued before DISCONNECT are for messages already handed to the application; they must reach
    /// the broker, or a persistent session delivers the same messages again on the next connection. So: no more
    /// messages are handed over (one waiting for room in a full channel is dropped unacknowledged, and the broker keeps
    /// it), DISCONNECT waits for room in the outbox behind the PUBACKs instead of being dropped when it is full, and
    /// the socket stays open until the broker closes it, which it does once it has read DISCONNECT and so every PUBACK
    /// before it. Closing at once is not enough: mosquitto 2.0 reads one packet per client per turn of its event loop,
    /// so right after a large drain thousands of PUBACKs are still unread in its socket buffer, and a new connection
    /// with the same client id (the next run of a benchmark, a restart) takes the session over and discards them.</para>
    /// <para>Bounded by <paramref name="timeout"/> (real time); after it the connection is closed anyway. Without any
    /// PUBACK sent on this connection it does not wait for the broker to close.</para>
    /// </remarks>
    public async Task DisconnectAsync(TimeSpan timeout)
    {
        var written = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // The real clock: this bounds a wait on the broker, not protocol timing (a fake clock would never fire).
        using var timeoutCts = new CancellationTokenSource(timeout);
        try
        {
            // Stop the reader handing over more messages (a delivery waiting for room in a full channel gives up:
            // that message was not acknowledged, so the broker keeps it), then wait until the message it is handing
            // over, if any, has its PUBACK queued.
            _deliveryCts.Cancel();
            await _deliveryLock.WaitAsync(timeoutCts.Token).ConfigureAwait(false);
            _deliveryStopped = true;
            _deliveryLock.Release();

            var packet = MqttCodec.DisconnectPacket.ToArray();
            await _outbox.Writer.WriteAsync(OutboxItem.Raw(packet, packet.Length, written: written), timeoutCts.Token).ConfigureAwait(false);
            await Task.WhenAny(written.Task, Completion).WaitAsync(timeoutCts.Token).ConfigureAwait(false);

            // The reader loop sees the broker close the connection (end of stream) and breaks it. Only needed when
            // there are acknowledgements to protect.
            if (_acknowledgedAny)
            {
                await Completion.WaitAsync(timeoutCts.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (timeoutCts.IsCancellationRequested)
        {
            // The socket did not take DISCONNECT in time; closing it below is all that is left to do.
        }
        catch (ChannelClosedException)
        {
            // Broken meanwhile: nothing more can be sent.
        }
        finally
        {
            Break(new MqttException("the client disconnected", false));
        }
    }

    /// <summary>
    /// Breaks the connection once: records <paramref name="reason"/>, stops both loops and the timer, closes the
    /// stream, fails pending acknowledgements. Returns the first reason, so callers can <c>throw Break(...)</c>.
    /// </summary>
    public MqttException Break(Exception reason)
    {
        var mqtt = Classify(reason);
        if (Interlocked.CompareExchange(ref _breakReason, mqtt, null) is { } first)
        {
            return first;
        }

        _keepAliveTimer?.Dispose();
        _cts.Cancel();
        _outbox.Writer.TryComplete();
        try
        {
            // Closing the stream ends a read or write that does not observe the token.
            _stream.Dispose();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            // Already closed: nothing more to release.
        }

        TaskCompletionSource<byte[]>[] pending;
        lock (_pendingAcks)
        {
            pending = [.. _pendingAcks.Values];
            _pendingAcks.Clear();
        }

        foreach (var p in pending)
        {
            p.TrySetException(mqtt);
        }

        _completion.TrySetResult(mqtt);
        return mqtt;
    }

    private MqttException Classify(Exception reason)
    {
        var broker = _options.Describe();
        return reason switch
        {
            MqttException m => m,
            EndOfStreamException => new MqttException($"MQTT broker {broker} closed the connection", true, reason),
            IOException or SocketException or ObjectDisposedException =>
                new MqttException($"connection to MQTT broker {broker} lost: {reason.Message}", true, reason),
            OperationCanceledException => new MqttException($"connection to MQTT broker {broker} was cancelled", false, reason),
            ChannelClosedException => new MqttException("the client was disposed", false, reason),
            _ => new MqttException($"MQTT connection to {broker} failed: {reason.GetType().Name}: {reason.Message}", false, reason),
        };
    }

    private static SslClientAuthenticationOptions CreateTlsOptions(MqttClientOptions options)
    {
        var tls = new SslClientAuthenticationOptions { TargetHost = options.Server.Host };
        if (options.CaCertificateFile is { } caFile)
        {
            // Pinning: trust only the given CA(s), not the system store.
            var roots = new X509Certificate2Collection();
            roots.ImportFromPemFile(caFile);
            tls.CertificateChainPolicy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
            };
            tls.CertificateChainPolicy.CustomTrustStore.AddRange(roots);
        }

        return tls;
    }

    private async ValueTask EnqueueSlowAsync(OutboxItem item, CancellationToken cancellationToken)
    {
        try
        {
            await _outbox.Writer.WriteAsync(item, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            // Broken meanwhile; see EnqueueAsync.
        }
    }

    private async Task HandshakeAsync(string clientId, CancellationToken cancellationToken)
    {
        var writer = new ArrayBufferWriter<byte>(256);
        MqttCodec.WriteConnect(writer, clientId, _options.CleanSession, (ushort)_options.KeepAlive.TotalSeconds, _options.UserName, _options.Password);
        await _stream.WriteAsync(writer.WrittenMemory, cancellationToken).ConfigureAwait(false);
        await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        _lastWrite = _timeProvider.GetTimestamp();

        var header = await _readBuffer.ReadHeaderAsync(cancellationToken).ConfigureAwait(false);
        if (header.Type != PacketType.ConnAck || header.RemainingLength != 2)
        {
            throw new MqttProtocolException(
                $"MQTT broker {_options.Describe()} answered CONNECT with packet type {(int)header.Type} (remaining length {header.RemainingLength}) instead of CONNACK");
        }

        await _readBuffer.EnsureAsync(header.TotalLength, cancellationToken).ConfigureAwait(false);
        var body = _readBuffer.Span.Slice(header.HeaderLength, 2);
        SessionPresent = (body[0] & 0x01) != 0;
        var code = (MqttConnectReturnCode)body[1];
        _readBuffer.Consume(header.TotalLength);
        if (code != MqttConnectReturnCode.Accepted)
        {
            throw new MqttConnectException(code, _options.Describe());
        }
    }

    private void Start()
    {
        // The reader runs synchronously up to its first real socket wait, so the keep-alive timer below always sees
        // it waiting; both loops then continue on the thread pool.
        _ = ReadLoopAsync();
        _ = WriteLoopAsync();
        if (_options.KeepAlive > TimeSpan.Zero)
        {
            var period = _options.KeepAlive / 2;
            _keepAliveTimer = _timeProvider.CreateTimer(static s => ((MqttConnection)s!).OnKeepAliveTick(), this, period, period);
        }
    }

    /// <summary>
    /// Sends PINGREQ when nothing was written for half the keep-alive, and breaks the connection when the reader has
    /// been waiting on the socket for 1.5 keep-alive intervals without receiving a byte (not even a PINGRESP).
    /// </summary>
    /// <remarks>
    /// Time spent not reading because the consumer is full does not count: the broker's packets then sit unread in
    /// the socket, which is backpressure, not a dead broker.
    /// </remarks>
    private void OnKeepAliveTick()
    {
        if (IsBroken)
        {
            return;
        }

        var now = _timeProvider.GetTimestamp();
        var keepAlive = _options.KeepAlive;
        var waitingSince = _readBuffer.WaitingSince;
        if (waitingSince != 0)
        {
            var silentSince = Math.Max(waitingSince, _readBuffer.LastReceive);
            var silent = _timeProvider.GetElapsedTime(silentSince, now);
            if (silent >= keepAlive * 1.5)
            {
                Break(new MqttException(
                    $"keep-alive timeout: MQTT broker {_options.Describe()} sent nothing for {silent.TotalSeconds:0.#} s " +
                    $"(keep-alive {keepAlive.TotalSeconds:0.#} s)", true));
                return;
            }
        }

        if (_timeProvider.GetElapsedTime(Volatile.Read(ref _lastWrite), now) >= keepAlive / 2)
        {
            var ping = MqttCodec.PingReqPacket.ToArray();
            _outbox.Writer.TryWrite(OutboxItem.Raw(ping, ping.Length));
        }
    }

    private async Task ReadLoopAsync()
    {
        var buffer = _readBuffer;
        var token = _cts.Token;
        try
        {
            // Ends only by Break: the broker closing the socket surfaces as EndOfStreamException.
            while (true)
            {
                var header = await buffer.ReadHeaderAsync(token).ConfigureAwait(false);
                await buffer.EnsureAsync(header.TotalLength, token).ConfigureAwait(false);
                switch (header.Type)
                {
                    case PacketType.Publish:
                        var message = DecodePublish(header, out var packetId);
                        buffer.Consume(header.TotalLength);
                        // False once disconnecting: the message is dropped unacknowledged (the broker keeps it) and the
                        // loop reads on until the broker closes the connection after DISCONNECT.
                        await DeliverAsync(message, packetId, token).ConfigureAwait(false);
                        break;

                    case PacketType.PubAck:
                        _client.OnPubAck(ReadPacketId(header));
                        buffer.Consume(header.TotalLength);
                        break;

                    case PacketType.SubAck:
                    case PacketType.UnsubAck:
                        CompleteAck(header);
                        buffer.Consume(header.TotalLength);
                        break;

                    case PacketType.PingResp:
                        if (header.RemainingLength != 0)
                        {
                            throw new MqttProtocolException($"malformed PINGRESP: remaining length {header.RemainingLength}, expected 0");
                        }

                        buffer.Consume(header.TotalLength);
                        break;

                    default:
                        throw new MqttProtocolException(
                            $"unexpected MQTT packet type {(int)header.Type} ({header.Type}) from broker {_options.Describe()}");
                }
            }
        }
        catch (Exception ex)
        {
            Break(ex);
        }
        finally
        {
            buffer.Dispose();
        }
    }

    /// <summary>
    /// Hands a message to the client, then queues its PUBACK; false (nothing handed over, nothing acknowledged) once
    /// <see cref="DisconnectAsync"/> began.
    /// </summary>
    private async ValueTask<bool> DeliverAsync(MqttMessage message, ushort packetId, CancellationToken token)
    {
        await _deliveryLock.WaitAsync(token).ConfigureAwait(false);
        try
        {
            if (_deliveryStopped)
            {
                return false;
            }

            try
            {
                await _client.DeliverAsync(message, _deliveryCts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_deliveryCts.IsCancellationRequested && !token.IsCancellationRequested)
            {
                return false;
            }

            // PUBACK only now: the message is in the consumer's channel. If we break before this line the broker
            // redelivers it (at least once), which is the point of QoS 1.
            if (message.Qos == MqttQos.AtLeastOnce)
            {
                _acknowledgedAny = true;
                await EnqueueAsync(OutboxItem.PubAck(packetId), token).ConfigureAwait(false);
            }

            return true;
        }
        finally
        {
            _deliveryLock.Release();
        }
    }

    private MqttMessage DecodePublish(PacketHeader header, out ushort packetId)
    {
        var body = _readBuffer.Span.Slice(header.HeaderLength, header.RemainingLength);
        var qos = (header.Flags >> 1) & 0x03;
        if (qos > 1)
        {
            throw new MqttProtocolException(
                qos == 2 ? "the broker sent a QoS 2 PUBLISH; this client subscribes with QoS 0 or 1 only" : "malformed PUBLISH: QoS 3");
        }

        if (body.Length < 2)
        {
            throw new MqttProtocolException("malformed PUBLISH: no topic length");
        }

        var topicLength = BinaryPrimitives.ReadUInt16BigEndian(body);
        var offset = 2 + topicLength + (qos == 0 ? 0 : 2);
        if (offset > body.Length)
        {
            throw new MqttProtocolException($"malformed PUBLISH: topic length {topicLength} exceeds the packet body of {body.Length} bytes");
        }

        packetId = 0;
        if (qos == 1)
        {
            packetId = BinaryPrimitives.ReadUInt16BigEndian(body[(2 + topicLength)..]);
            if (packetId == 0)
            {
                throw new MqttProtocolException("malformed PUBLISH: QoS 1 with packet identifier 0");
            }
        }

        // One copy of topic and payload together (with the packet id between them for QoS 1): no string, no second copy.
        var copied = _arena.Copy(body[2..]);
        var topic = copied[..topicLength];
        var payload = copied[(offset - 2)..];
        return new MqttMessage(topic, payload, (MqttQos)qos, Retain: (header.Flags & 0x01) != 0, Duplicate: (header.Flags & 0x08) != 0);
    }

    private ushort ReadPacketId(PacketHeader header)
    {
        if (header.RemainingLength != 2)
        {
            throw new MqttProtocolException($"malformed {header.Type}: remaining length {header.RemainingLength}, expected 2");
        }

        return BinaryPrimitives.ReadUInt16BigEndian(_readBuffer.Span[header.HeaderLength..]);
    }

    private void CompleteAck(PacketHeader header)
    {
        if (header.RemainingLength < 2)
        {
            throw new MqttProtocolException($"malformed {header.Type}: remaining length {header.RemainingLength}");
        }

        var body = _readBuffer.Span.Slice(header.HeaderLength, header.RemainingLength);
        var id = BinaryPrimitives.ReadUInt16BigEndian(body);
        TaskCompletionSource<byte[]>? ack;
        lock (_pendingAcks)
        {
            _pendingAcks.Remove(id, out ack);
        }

        if (ack is null)
        {
            throw new MqttProtocolException($"the broker sent {header.Type} for packet id {id}, which this client did not send");
        }

        ack.TrySetResult(body[2..].ToArray());
    }

    private async Task WriteLoopAsync()
    {
        var reader = _outbox.Reader;
        var token = _cts.Token;
        var buffer = new ArrayBufferWriter<byte>(WriteBatchBytes);
        var written = new List<TaskCompletionSource>();
        var pooled = new List<byte[]>();
        try
        {
            while (await reader.WaitToReadAsync(token).ConfigureAwait(false))
            {
                // Batch: everything queued so far (up to 64 KiB) goes out in one socket write. Many PUBACKs thus
                // cost one system call, which is what lets receive keep up with the broker.
                while (buffer.WrittenCount < WriteBatchBytes && reader.TryRead(out var item))
                {
                    Encode(item, buffer);
                    if (item.Written is not null)
                    {
                        written.Add(item.Written);
                    }

                    if (item.Pooled)
                    {
                        pooled.Add(item.Packet!);
                    }
                }

                await _stream.WriteAsync(buffer.WrittenMemory, token).ConfigureAwait(false);
                await _stream.FlushAsync(token).ConfigureAwait(false);
                Volatile.Write(ref _lastWrite, _timeProvider.GetTimestamp());
                buffer.ResetWrittenCount();
                foreach (var array in pooled)
                {
                    ArrayPool<byte>.Shared.Return(array);
                }

                pooled.Clear();
                foreach (var w in written)
                {
                    w.TrySetResult();
                }

                written.Clear();
            }
        }
        catch (Exception ex)
        {
            Break(ex);
        }
        finally
        {
            foreach (var w in written)
            {
                w.TrySetCanceled(CancellationToken.None);
            }
        }
    }

    private static void Encode(in OutboxItem item, ArrayBufferWriter<byte> buffer)
    {
        if (item.Publish is { } publish)
        {
            publish.Packet.CopyTo(buffer.GetSpan(publish.Packet.Length));
            buffer.Advance(publish.Packet.Length);

            // Any later send of this packet is a redelivery.
            publish.Packet[0] |= 0x08;
        }
        else if (item.Packet is { } packet)
        {
            packet.AsSpan(0, item.Length).CopyTo(buffer.GetSpan(item.Length));
            buffer.Advance(item.Length);
        }
        else
        {
            MqttCodec.WritePubAck(buffer.GetSpan(4), item.PacketId);
            buffer.Advance(4);
        }
    }
}
