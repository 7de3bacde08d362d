using System.Buffers;
using System.Diagnostics;
using System.Text;
using System.Threading.Channels;
using Fleet.Mqtt.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Fleet.Mqtt;

/// <summary>Where an <see cref="MqttClient"/> is in its life.</summary>
/// <remarks>
/// <code>
///   Created ──ConnectAsync──► Connected ──transient failure──► Reconnecting ──(backoff, CONNECT, resubscribe, resend)──► Connected
///      │ failure: thrown           │ DisconnectAsync / DisposeAsync          │ non-transient failure or AutoReconnect off
///      ▼                           ▼                                         ▼
///   Created                   Disconnected                                Faulted (Messages completes with the exception)
/// </code>
/// </remarks>
public enum MqttClientState
{
    /// <summary>Not connected yet.</summary>
    Created,

    /// <summary>A connection is open and subscriptions are in place.</summary>
    Connected,

    /// <summary>The connection broke; the client is reconnecting with backoff.</summary>
    Reconnecting,

    /// <summary>Disconnected by the application; final.</summary>
    Disconnected,

    /// <summary>Stopped by a failure that reconnecting cannot fix; final. See <see cref="MqttClient.Completion"/>.</summary>
    Faulted,
}

/// <summary>Counters of an <see cref="MqttClient"/>, read at one moment.</summary>
/// <param name="MessagesReceived">Application messages handed to <see cref="MqttClient.Messages"/>.</param>
/// <param name="BytesReceived">Bytes read from the broker, all connections together.</param>
/// <param name="MessagesPublished">PUBLISH packets queued for sending (QoS 0 and 1).</param>
/// <param name="PublishesAcknowledged">QoS 1 publishes the broker acknowledged.</param>
/// <param name="Inflight">QoS 1 publishes awaiting PUBACK now.</param>
/// <param name="Reconnects">Successful reconnects.</param>
public readonly record struct MqttClientStatistics(
    long MessagesReceived, long BytesReceived, long MessagesPublished, long PublishesAcknowledged, int Inflight, long Reconnects);

/// <summary>
/// An MQTT 3.1.1 client: QoS 0 and 1 in both directions, clean or persistent sessions, TLS, keep-alive, automatic
/// reconnect with backoff and resubscribe, a maximum packet size, and backpressure by not reading.
/// </summary>
/// <remarks>
/// <para>
/// Received messages come out of <see cref="Messages"/>, a bounded channel of <see cref="MqttClientOptions.ReceiveCapacity"/>
/// messages. A QoS 1 message is acknowledged only after the channel accepted it; while the channel is full the client
/// does not read its socket, so the broker holds the rest. The channel completes when the client is disconnected,
/// or with the failure when it faults.
/// </para>
/// <para>
/// Thread-safety: every member may be called concurrently. Publishes from one caller that awaits each
/// <see cref="EnqueuePublishAsync"/> go out in call order. QoS 1 publishes not yet acknowledged survive reconnects and
/// are resent, in order, with the DUP flag.
/// </para>
/// <para>Lifetime: connect once with <see cref="ConnectAsync"/>; dispose (or <see cref="DisconnectAsync"/>) when done.</para>
/// </remarks>
[DebuggerDisplay("MqttClient {_options.Server} {State}, {_inflightOrder.Count} in flight")]
public sealed partial class MqttClient : IAsyncDisposable
{
    private readonly MqttClientOptions _options;
    private readonly ILogger _logger;
    private readonly string _clientId;
    private readonly string _broker;
    private readonly Channel<MqttMessage> _inbox;
    private readonly object _gate = new();

    /// <summary>Serializes queuing of publishes and the resend on reconnect, so packets leave in order.</summary>
    private readonly SemaphoreSlim _sendLock = new(1, 1);

    /// <summary>Free slots in the QoS 1 in-flight window.</summary>
    private readonly SemaphoreSlim _window;
    private readonly Dictionary<ushort, OutgoingPublish> _inflight = [];
    private readonly LinkedList<OutgoingPublish> _inflightOrder = new();
    private readonly List<MqttSubscription> _subscriptions = [];
    private readonly CancellationTokenSource _lifetime = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completed when the in-flight list becomes empty; created on demand by <see cref="WhenAllAcknowledgedAsync"/>.</summary>
    private TaskCompletionSource? _drained;
    private MqttConnection? _connection;
    private MqttClientState _state = MqttClientState.Created;
    private Task? _supervisor;
    private ushort _lastPacketId;
    private long _messagesReceived;
    private long _messagesPublished;
    private long _publishesAcknowledged;
    private long _reconnects;
    private long _bytesOfClosedConnections;

    /// <summary>Creates a client; nothing happens on the network until <see cref="ConnectAsync"/>.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public MqttClient(MqttClientOptions options, ILogger<MqttClient>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _broker = options.Describe();
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _clientId = string.IsNullOrEmpty(options.ClientId) ? "fleet-" + Guid.NewGuid().ToString("N")[..12] : options.ClientId;
        _window = new SemaphoreSlim(options.MaxInflight, options.MaxInflight);
        _inbox = Channel.CreateBounded<MqttMessage>(new BoundedChannelOptions(options.ReceiveCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,

            // One reader loop writes at a time, but an old connection's loop may still be unwinding while a new one
            // starts, so the channel must tolerate two writers.
            SingleWriter = false,
        });
    }

    /// <summary>Received messages, in the order the broker sent them.</summary>
    public ChannelReader<MqttMessage> Messages => _inbox.Reader;

    /// <summary>The client id sent in CONNECT (generated when the options left it empty).</summary>
    public string ClientId => _clientId;

    /// <summary>The current state.</summary>
    public MqttClientState State
    {
        get
        {
            lock (_gate)
            {
                return _state;
            }
        }
    }

    /// <summary>Completes when the client is disconnected; faults with the reason when it stops on a failure.</summary>
    public Task Completion => _completion.Task;

    /// <summary>Current counters.</summary>
    public MqttClientStatistics Statistics
    {
        get
        {
            lock (_gate)
            {
                return new MqttClientStatistics(
                    Interlocked.Read(ref _messagesReceived),
                    _bytesOfClosedConnections + (_connection?.BytesRead ?? 0),
                    Interlocked.Read(ref _messagesPublished),
                    Interlocked.Read(ref _publishesAcknowledged),
                    _inflightOrder.Count,
                    _reconnects);
            }
        }
    }

    /// <summary>Raised (on a pool thread) whenever <see cref="State"/> changes.</summary>
    public event EventHandler<MqttClientState>? StateChanged;

    /// <summary>Connects to the broker; from then on the client reconnects by itself after transient failures.</summary>
    /// <returns>Whether the broker still had a session for this client id (only possible with a persistent session).</returns>
    /// <exception cref="MqttConnectException">The broker refused the connection (for example bad user name or password).</exception>
    /// <exception cref="MqttException">The broker could not be reached or the handshake failed.</exception>
    public async Task<bool> ConnectAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (_state != MqttClientState.Created || _supervisor is not null)
            {
                throw new InvalidOperationException($"ConnectAsync can be called once, on a new client (state {_state})");
            }

            _supervisor = Task.CompletedTask;
        }

        try
        {
            var connection = await MqttConnection.OpenAsync(this, _options, _clientId, cancellationToken).ConfigureAwait(false);
            await ActivateAsync(connection, reconnect: false, cancellationToken).ConfigureAwait(false);
            LogConnected(_logger, _broker, _clientId, connection.SessionPresent);
            _supervisor = SuperviseAsync();
            return connection.SessionPresent;
        }
        catch
        {
            lock (_gate)
            {
                _supervisor = null;
            }

            throw;
        }
    }

    /// <summary>Subscribes to one topic filter (wildcards <c>+</c> and <c>#</c> allowed).</summary>
    /// <returns>The QoS the broker granted.</returns>
    public async Task<MqttQos> SubscribeAsync(string topicFilter, MqttQos qos = MqttQos.AtLeastOnce, CancellationToken cancellationToken = default) =>
        (await SubscribeAsync([new MqttSubscription(topicFilter, qos)], cancellationToken).ConfigureAwait(false))[0];

    /// <summary>
    /// Subscribes to topic filters. They are remembered and subscribed again after a reconnect that lost the session.
    /// </summary>
    /// <returns>The QoS the broker granted, per filter.</returns>
    /// <exception cref="MqttException">The broker refused a filter (SUBACK failure code), or the client faulted.</exception>
    public async Task<MqttQos[]> SubscribeAsync(IReadOnlyList<MqttSubscription> subscriptions, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(subscriptions);
        ArgumentOutOfRangeException.ThrowIfZero(subscriptions.Count);
        foreach (var s in subscriptions)
        {
            MqttTopic.ValidateFilter(s.TopicFilter);
            ArgumentOutOfRangeException.ThrowIfGreaterThan((int)s.Qos, 1, nameof(subscriptions));
        }

        lock (_gate)
        {
            foreach (var s in subscriptions)
            {
                _subscriptions.RemoveAll(x => x.TopicFilter == s.TopicFilter);
                _subscriptions.Add(s);
            }
        }

        while (true)
        {
            var connection = await GetConnectionAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                return await SubscribeOnAsync(connection, subscriptions, cancellationToken).ConfigureAwait(false);
            }
            catch (MqttException ex) when (ex.IsTransient && connection.IsBroken)
            {
                // The connection broke under us; the next one resubscribes (or we do, once it is up).
            }
        }
    }

    /// <summary>Unsubscribes from topic filters and forgets them.</summary>
    public async Task UnsubscribeAsync(IReadOnlyList<string> topicFilters, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(topicFilters);
        ArgumentOutOfRangeException.ThrowIfZero(topicFilters.Count);
        foreach (var f in topicFilters)
        {
            MqttTopic.ValidateFilter(f);
        }

        lock (_gate)
        {
            _subscriptions.RemoveAll(x => topicFilters.Contains(x.TopicFilter));
        }

        while (true)
        {
            var connection = await GetConnectionAsync(cancellationToken).ConfigureAwait(false);
            var id = AllocatePacketId(connection);
            try
            {
                await connection.SendAndAwaitAckAsync(id, MqttCodec.EncodeUnsubscribe(id, topicFilters), cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (MqttException ex) when (ex.IsTransient && connection.IsBroken)
            {
                // Retry on the next connection; unsubscribing twice is harmless.
            }
        }
    }

    /// <summary>Publishes a message and waits until it is delivered: PUBACK for QoS 1, queued for the socket for QoS 0.</summary>
    /// <exception cref="ArgumentException">The topic is invalid or the packet would exceed <see cref="MqttClientOptions.MaxPacketSize"/>.</exception>
    public async Task PublishAsync(string topic, ReadOnlyMemory<byte> payload, MqttQos qos = MqttQos.AtMostOnce, bool retain = false, CancellationToken cancellationToken = default)
    {
        var acknowledged = await EnqueuePublishAsync(topic, payload, qos, retain, cancellationToken).ConfigureAwait(false);
        await acknowledged.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Queues a message for publishing and returns once it is queued (in call order), with a task that completes on
    /// PUBACK (QoS 1) or is already complete (QoS 0). For QoS 1 this waits while the in-flight window is full, which
    /// is the way to pipeline many publishes without unbounded memory.
    /// </summary>
    /// <remarks>The payload is copied before this returns; the caller may reuse its buffer.</remarks>
    public async ValueTask<Task> EnqueuePublishAsync(string topic, ReadOnlyMemory<byte> payload, MqttQos qos = MqttQos.AtMostOnce, bool retain = false, CancellationToken cancellationToken = default)
    {
        MqttTopic.ValidateName(topic);
        ArgumentOutOfRangeException.ThrowIfGreaterThan((int)qos, 1, nameof(qos));
        var topicBytes = Encoding.UTF8.GetByteCount(topic);
        var size = MqttCodec.PublishSize(topicBytes, payload.Length, qos);
        if (size > _options.MaxPacketSize)
        {
            throw new ArgumentException(
                $"a PUBLISH of {size} bytes to '{topic}' exceeds the maximum packet size of {_options.MaxPacketSize} bytes", nameof(payload));
        }

        if (qos == MqttQos.AtMostOnce)
        {
            await PublishQos0Async(topic, topicBytes, payload, retain, (int)size, cancellationToken).ConfigureAwait(false);
            return Task.CompletedTask;
        }

        var packet = new byte[size];
        var idOffset = MqttCodec.WritePublish(packet, topic, topicBytes, payload.Span, qos, retain, 0);
        await _window.WaitAsync(cancellationToken).ConfigureAwait(false);
        var windowTaken = true;
        try
        {
            await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                OutgoingPublish publish;
                MqttConnection? connection;
                lock (_gate)
                {
                    ThrowIfStopped();
                    var id = NextPacketId(_connection);
                    packet[idOffset] = (byte)(id >> 8);
                    packet[idOffset + 1] = (byte)id;
                    publish = new OutgoingPublish(packet, id);
                    publish.Node = _inflightOrder.AddLast(publish);
                    _inflight.Add(id, publish);
                    windowTaken = false; // now owned by the in-flight entry, released on PUBACK or failure
                    connection = _state == MqttClientState.Connected ? _connection : null;
                }

                Interlocked.Increment(ref _messagesPublished);

                // Not connected: the entry is sent when the next connection is activated (under the same lock).
                if (connection is not null)
                {
                    await connection.EnqueueAsync(OutboxItem.ForPublish(publish), cancellationToken).ConfigureAwait(false);
                }

                return publish.Acknowledged.Task;
            }
            finally
            {
                _sendLock.Release();
            }
        }
        finally
        {
            if (windowTaken)
            {
                _window.Release();
            }
        }
    }

    /// <summary>Waits until every QoS 1 publish queued so far has been acknowledged (across reconnects).</summary>
    /// <exception cref="MqttException">The client stopped first; the unacknowledged publishes failed.</exception>
    public Task WhenAllAcknowledgedAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (_inflightOrder.Count == 0)
            {
                return Task.CompletedTask;
            }

            _drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _drained.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Sends DISCONNECT after everything queued so far, closes the connection and completes <see cref="Messages"/>.</summary>
    /// <remarks>
    /// Every message already handed to <see cref="Messages"/> is acknowledged to the broker before DISCONNECT, and
    /// the client waits (up to <see cref="MqttClientOptions.DisconnectTimeout"/>) for the broker to close the connection, so a persistent session does not deliver
    /// them again. QoS 1 publishes still awaiting PUBACK fail. Messages already in <see cref="Messages"/> can still be read.
    /// </remarks>
    public async Task DisconnectAsync()
    {
        MqttConnection? connection;
        lock (_gate)
        {
            if (_state is MqttClientState.Disconnected or MqttClientState.Faulted)
            {
                return;
            }

            connection = _connection;
            SetState(MqttClientState.Disconnected);
        }

        _lifetime.Cancel();
        if (connection is not null)
        {
            await connection.DisconnectAsync(_options.DisconnectTimeout).ConfigureAwait(false);
        }

        if (_supervisor is { } supervisor)
        {
            await supervisor.ConfigureAwait(false);
        }

        Stop(null);
    }

    /// <inheritdoc cref="DisconnectAsync"/>
    public async ValueTask DisposeAsync()
    {
        await DisconnectAsync().ConfigureAwait(false);
        _lifetime.Dispose();
    }

    /// <summary>Called by the reader loop: hands a message to the consumer, waiting while the channel is full.</summary>
    internal ValueTask DeliverAsync(MqttMessage message, CancellationToken cancellationToken)
    {
        if (_inbox.Writer.TryWrite(message))
        {
            Interlocked.Increment(ref _messagesReceived);
            return default;
        }

        return DeliverSlowAsync(message, cancellationToken);
    }

    /// <summary>Called by the reader loop on PUBACK.</summary>
    internal void OnPubAck(ushort packetId)
    {
        OutgoingPublish? publish;
        lock (_gate)
        {
            if (_inflight.Remove(packetId, out publish))
            {
                _inflightOrder.Remove(publish.Node!);
                if (_inflightOrder.Count == 0 && _drained is { } drained)
                {
                    _drained = null;
                    drained.TrySetResult();
                }
            }
        }

        if (publish is null)
        {
            // A PUBACK for a packet resent with DUP after the first copy was acknowledged: harmless.
            LogUnknownPubAck(_logger, packetId);
            return;
        }

        Interlocked.Increment(ref _publishesAcknowledged);
        _window.Release();
        publish.Acknowledged.TrySetResult();
    }

    private async ValueTask DeliverSlowAsync(MqttMessage message, CancellationToken cancellationToken)
    {
        // Backpressure: the reader loop is parked here and reads nothing more from the socket until there is room.
        await _inbox.Writer.WriteAsync(message, cancellationToken).ConfigureAwait(false);
        Interlocked.Increment(ref _messagesReceived);
    }

    private async Task PublishQos0Async(string topic, int topicBytes, ReadOnlyMemory<byte> payload, bool retain, int size, CancellationToken cancellationToken)
    {
        var packet = ArrayPool<byte>.Shared.Rent(size);
        MqttCodec.WritePublish(packet, topic, topicBytes, payload.Span, MqttQos.AtMostOnce, retain, 0);
        var queued = false;
        try
        {
            while (!queued)
            {
                var connection = await GetConnectionAsync(cancellationToken).ConfigureAwait(false);
                await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    // Re-check under the lock: a reconnect may have replaced the connection meanwhile.
                    if (!connection.IsBroken)
                    {
                        await connection.EnqueueAsync(OutboxItem.Raw(packet, size, pooled: true), cancellationToken).ConfigureAwait(false);
                        queued = true;
                    }
                }
                finally
                {
                    _sendLock.Release();
                }
            }

            Interlocked.Increment(ref _messagesPublished);
        }
        finally
        {
            if (!queued)
            {
                ArrayPool<byte>.Shared.Return(packet);
            }
        }
    }

    private async Task<MqttQos[]> SubscribeOnAsync(MqttConnection connection, IReadOnlyList<MqttSubscription> subscriptions, CancellationToken cancellationToken)
    {
        var id = AllocatePacketId(connection);
        var codes = await connection.SendAndAwaitAckAsync(id, MqttCodec.EncodeSubscribe(id, subscriptions), cancellationToken).ConfigureAwait(false);
        if (codes.Length != subscriptions.Count)
        {
            throw connection.Break(new MqttProtocolException($"SUBACK has {codes.Length} return codes for {subscriptions.Count} topic filters"));
        }

        var granted = new MqttQos[codes.Length];
        for (var i = 0; i < codes.Length; i++)
        {
            if (codes[i] == 0x80)
            {
                throw new MqttException($"MQTT broker {_options.Describe()} refused the subscription to '{subscriptions[i].TopicFilter}' (SUBACK failure 0x80)", false);
            }

            if (codes[i] > 2)
            {
                throw connection.Break(new MqttProtocolException($"SUBACK return code 0x{codes[i]:X2} is not valid MQTT 3.1.1"));
            }

            granted[i] = codes[i] == 0 ? MqttQos.AtMostOnce : MqttQos.AtLeastOnce;
        }

        return granted;
    }

    /// <summary>
    /// Makes a freshly opened connection the current one: resubscribes if the broker lost the session, resends the
    /// unacknowledged QoS 1 publishes in their original order, then marks the client connected.
    /// </summary>
    /// <remarks>
    /// A reconnect is counted as soon as the broker has accepted the new connection, before anything is sent on it, so
    /// whoever sees a PUBACK or a message that came over the new connection also sees the count.
    /// </remarks>
    private async Task ActivateAsync(MqttConnection connection, bool reconnect, CancellationToken cancellationToken)
    {
        if (reconnect)
        {
            Interlocked.Increment(ref _reconnects);
        }

        try
        {
            MqttSubscription[] resubscribe;
            lock (_gate)
            {
                resubscribe = connection.SessionPresent ? [] : [.. _subscriptions];
            }

            if (resubscribe.Length > 0)
            {
                await SubscribeOnAsync(connection, resubscribe, cancellationToken).ConfigureAwait(false);
                LogResubscribed(_logger, resubscribe.Length);
            }

            await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                OutgoingPublish[] resend;
                lock (_gate)
                {
                    ThrowIfStopped();
                    resend = [.. _inflightOrder];
                }

                foreach (var publish in resend)
                {
                    // Packets never sent so far carry no DUP flag; resent ones got it on their first write.
                    await connection.EnqueueAsync(OutboxItem.ForPublish(publish), cancellationToken).ConfigureAwait(false);
                }

                if (resend.Length > 0)
                {
                    LogResent(_logger, resend.Length);
                }

                lock (_gate)
                {
                    ThrowIfStopped();
                    _connection = connection;
                    SetState(MqttClientState.Connected);
                    _connected.TrySetResult();
                }
            }
            finally
            {
                _sendLock.Release();
            }
        }
        catch (Exception ex)
        {
            connection.Break(ex);
            throw;
        }
    }

    /// <summary>
    /// Waits for the current connection to break and reconnects after transient failures, with exponential backoff
    /// and jitter, until the client is disconnected or a failure is not transient.
    /// </summary>
    private async Task SuperviseAsync()
    {
        var token = _lifetime.Token;

        // Ends when the client stops: disconnect (token), a non-transient failure, or AutoReconnect off.
        while (true)
        {
            MqttConnection current;
            lock (_gate)
            {
                current = _connection!;
            }

            var reason = await current.Completion.ConfigureAwait(false);
            lock (_gate)
            {
                _bytesOfClosedConnections += current.BytesRead;
                _connection = null;
                if (_state != MqttClientState.Connected)
                {
                    return; // disconnected by the application
                }

                _connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                SetState(MqttClientState.Reconnecting);
            }

            if (!reason.IsTransient || !_options.AutoReconnect)
            {
                LogFaulted(_logger, _broker, reason.Message);
                Stop(reason);
                return;
            }

            LogConnectionLost(_logger, _broker, reason.Message);
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    await Task.Delay(BackoffDelay(attempt), _options.TimeProvider, token).ConfigureAwait(false);
                    var connection = await MqttConnection.OpenAsync(this, _options, _clientId, token).ConfigureAwait(false);
                    await ActivateAsync(connection, reconnect: true, token).ConfigureAwait(false);
                    LogReconnected(_logger, _broker, attempt + 1, connection.SessionPresent);
                    break;
                }
                catch (OperationCanceledException) when (token.IsCancellationRequested)
                {
                    return;
                }
                catch (MqttException ex) when (ex.IsTransient)
                {
                    LogReconnectFailed(_logger, attempt + 1, ex.Message);
                }
                catch (Exception ex)
                {
                    if (token.IsCancellationRequested)
                    {
                        return;
                    }

                    var fault = ex as MqttException ?? new MqttException($"reconnecting to {_options.Describe()} failed: {ex.Message}", false, ex);
                    LogFaulted(_logger, _broker, fault.Message);
                    Stop(fault);
                    return;
                }
            }
        }
    }

    private TimeSpan BackoffDelay(int attempt)
    {
        // Exponential, capped, with "equal jitter": half fixed, half random, so a fleet of clients does not
        // reconnect in lockstep after a broker restart.
        var min = _options.ReconnectMinDelay.TotalMilliseconds;
        var capped = Math.Min(_options.ReconnectMaxDelay.TotalMilliseconds, min * Math.Pow(2, Math.Min(attempt, 30)));
        return TimeSpan.FromMilliseconds((capped / 2) + (Random.Shared.NextDouble() * capped / 2));
    }

    /// <summary>Final state: completes the channel (with the error, if any) and fails what awaits an acknowledgement.</summary>
    private void Stop(MqttException? fault)
    {
        OutgoingPublish[] pending;
        lock (_gate)
        {
            if (fault is not null && _state != MqttClientState.Disconnected)
            {
                SetState(MqttClientState.Faulted);
            }

            pending = [.. _inflightOrder];
            _inflight.Clear();
            _inflightOrder.Clear();
            if (_drained is { } drained)
            {
                _drained = null;
                if (pending.Length == 0)
                {
                    drained.TrySetResult();
                }
                else
                {
                    drained.TrySetException(fault ?? new MqttException("the client was disconnected before the broker acknowledged every publish", false));
                }
            }
            var stopped = fault ?? new MqttException("the client was disconnected", false);
            _connected.TrySetException(stopped);
            _connected.Task.ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
        }

        var failure = fault ?? new MqttException("the client was disconnected before the broker acknowledged this publish", false);
        foreach (var p in pending)
        {
            p.Acknowledged.TrySetException(failure);
        }

        _inbox.Writer.TryComplete(fault);
        if (fault is null)
        {
            _completion.TrySetResult();
        }
        else
        {
            _completion.TrySetException(fault);
        }
    }

    private async Task<MqttConnection> GetConnectionAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Task connected;
            lock (_gate)
            {
                ThrowIfStopped();
                if (_state == MqttClientState.Connected && _connection is { IsBroken: false } c)
                {
                    return c;
                }

                if (_state == MqttClientState.Created)
                {
                    throw new InvalidOperationException("call ConnectAsync first");
                }

                connected = _connected.Task;
            }

            await connected.WaitAsync(cancellationToken).ConfigureAwait(false);
            if (connected.IsCompletedSuccessfully)
            {
                // Loop: the connection may have broken again already.
                await Task.Yield();
            }
        }
    }

    private ushort AllocatePacketId(MqttConnection connection)
    {
        lock (_gate)
        {
            return NextPacketId(connection);
        }
    }

    /// <summary>Next packet id not used by an in-flight publish or a pending SUBSCRIBE/UNSUBSCRIBE. Caller holds _gate.</summary>
    private ushort NextPacketId(MqttConnection? connection)
    {
        // The window (at most 65,535) guarantees a free id exists.
        while (true)
        {
            _lastPacketId = _lastPacketId == ushort.MaxValue ? (ushort)1 : (ushort)(_lastPacketId + 1);
            if (!_inflight.ContainsKey(_lastPacketId) && connection?.IsPendingAckId(_lastPacketId) != true)
            {
                return _lastPacketId;
            }
        }
    }

    /// <summary>Caller holds _gate.</summary>
    private void ThrowIfStopped()
    {
        if (_state == MqttClientState.Disconnected)
        {
            throw new ObjectDisposedException(nameof(MqttClient), "the MQTT client was disconnected");
        }

        if (_state == MqttClientState.Faulted)
        {
            throw _completion.Task.Exception?.InnerException ?? new MqttException("the MQTT client faulted", false);
        }
    }

    /// <summary>Caller holds _gate.</summary>
    private void SetState(MqttClientState state)
    {
        if (_state == state)
        {
            return;
        }

        _state = state;
        if (StateChanged is { } handler)
        {
            ThreadPool.QueueUserWorkItem(s => handler(this, s), state, preferLocal: false);
        }
    }

    [LoggerMessage(EventId = 1100, Level = LogLevel.Information, Message = "MQTT connected to {Broker} as {ClientId} (session present: {SessionPresent})")]
    private static partial void LogConnected(ILogger logger, string broker, string clientId, bool sessionPresent);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Warning, Message = "MQTT connection to {Broker} lost: {Reason}; reconnecting")]
    private static partial void LogConnectionLost(ILogger logger, string broker, string reason);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Information, Message = "MQTT reconnected to {Broker} after {Attempts} attempt(s) (session present: {SessionPresent})")]
    private static partial void LogReconnected(ILogger logger, string broker, int attempts, bool sessionPresent);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Warning, Message = "MQTT reconnect attempt {Attempt} failed: {Reason}")]
    private static partial void LogReconnectFailed(ILogger logger, int attempt, string reason);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Error, Message = "MQTT client for {Broker} stopped: {Reason}")]
    private static partial void LogFaulted(ILogger logger, string broker, string reason);

    [LoggerMessage(EventId = 1105, Level = LogLevel.Debug, Message = "MQTT resubscribed {Count} topic filter(s)")]
    private static partial void LogResubscribed(ILogger logger, int count);

    [LoggerMessage(EventId = 1106, Level = LogLevel.Information, Message = "MQTT resent {Count} unacknowledged QoS 1 publish(es) with DUP")]
    private static partial void LogResent(ILogger logger, int count);

    [LoggerMessage(EventId = 1107, Level = LogLevel.Debug, Message = "MQTT PUBACK for unknown packet id {PacketId} ignored")]
    private static partial void LogUnknownPubAck(ILogger logger, ushort packetId);
}
