namespace Fleet.Mqtt;

/// <summary>Settings of an <see cref="MqttClient"/>.</summary>
/// <remarks>Read once when the client is created; later changes have no effect.</remarks>
public sealed class MqttClientOptions
{
    /// <summary>The default <see cref="MaxPacketSize"/>: 1 MiB.</summary>
    public const int DefaultMaxPacketSize = 1024 * 1024;

    /// <summary>The largest packet MQTT can express: 1 byte of type, 4 of remaining length, 268,435,455 of body.</summary>
    public const int ProtocolMaxPacketSize = 268_435_455 + 5;

    /// <summary>
    /// The broker: <c>mqtt://host[:port]</c> (TCP, default port 1883) or <c>mqtts://host[:port]</c> (TLS, default 8883).
    /// </summary>
    public required Uri Server { get; init; }

    /// <summary>The client identifier. Empty: a random <c>fleet-…</c> id (only valid with <see cref="CleanSession"/>).</summary>
    public string ClientId { get; init; } = "";

    /// <summary>
    /// True (default): the broker forgets the session on disconnect. False: a persistent session; QoS 1 messages
    /// published while this client is away are queued by the broker and delivered after it reconnects.
    /// </summary>
    public bool CleanSession { get; init; } = true;

    /// <summary>User name sent in CONNECT, if any.</summary>
    public string? UserName { get; init; }

    /// <summary>Password sent in CONNECT, if any (needs <see cref="UserName"/>).</summary>
    public string? Password { get; init; }

    /// <summary>Keep-alive interval announced to the broker; <see cref="TimeSpan.Zero"/> disables it. Default 30 s.</summary>
    public TimeSpan KeepAlive { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long TCP connect, TLS handshake and CONNACK may take together. Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long <see cref="MqttClient.DisconnectAsync"/> waits (real time) for the packets queued before DISCONNECT to
    /// go out and, after messages were acknowledged, for the broker to close the connection. Default 10 s.
    /// </summary>
    public TimeSpan DisconnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Largest packet accepted from the broker or sent to it, fixed header included. A larger incoming packet breaks
    /// the connection with <see cref="MqttPacketTooLargeException"/>; a larger outgoing one is rejected by
    /// <see cref="MqttClient.PublishAsync(string, ReadOnlyMemory{byte}, MqttQos, bool, CancellationToken)"/>. Default 1 MiB.
    /// </summary>
    public int MaxPacketSize { get; init; } = DefaultMaxPacketSize;

    /// <summary>
    /// Capacity of the receive channel in messages. When it is full the client stops reading its socket, so the
    /// broker (and TCP) hold the rest: nothing is buffered without bound. Default 4096.
    /// </summary>
    public int ReceiveCapacity { get; init; } = 4096;

    /// <summary>Most QoS 1 publishes awaiting PUBACK at once; further publishes wait. Default 256.</summary>
    public int MaxInflight { get; init; } = 256;

    /// <summary>Whether a transient failure is followed by reconnecting (with backoff) and resubscribing. Default true.</summary>
    public bool AutoReconnect { get; init; } = true;

    /// <summary>First reconnect delay; doubled per failed attempt up to <see cref="ReconnectMaxDelay"/>, with jitter. Default 250 ms.</summary>
    public TimeSpan ReconnectMinDelay { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Largest reconnect delay. Default 30 s.</summary>
    public TimeSpan ReconnectMaxDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// For <c>mqtts://</c>: a PEM file of CA certificates to trust instead of the system store (pinning). Null: the
    /// system trust store.
    /// </summary>
    public string? CaCertificateFile { get; init; }

    /// <summary>The clock for keep-alive and reconnect delays.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Parses a broker URL and checks it is <c>mqtt://</c> or <c>mqtts://</c>.</summary>
    /// <exception cref="ArgumentException">The URL is not an absolute mqtt:// or mqtts:// URL with a host.</exception>
    public static Uri ParseServer(string url)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(url);
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host) ||
            (uri.Scheme != "mqtt" && uri.Scheme != "mqtts"))
        {
            throw new ArgumentException($"'{url}' is not an MQTT broker URL; expected mqtt://host:port or mqtts://host:port", nameof(url));
        }

        return uri;
    }

    internal bool UseTls => Server.Scheme == "mqtts";

    internal int Port => Server.IsDefaultPort || Server.Port <= 0 ? (UseTls ? 8883 : 1883) : Server.Port;

    internal string Describe() => $"{Server.Scheme}://{Server.Host}:{Port}";

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(Server);
        ParseServer(Server.OriginalString);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxPacketSize, 64, nameof(MaxPacketSize));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxPacketSize, ProtocolMaxPacketSize, nameof(MaxPacketSize));
        ArgumentOutOfRangeException.ThrowIfLessThan(ReceiveCapacity, 1, nameof(ReceiveCapacity));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxInflight, 1, nameof(MaxInflight));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxInflight, 65_535, nameof(MaxInflight));
        ArgumentOutOfRangeException.ThrowIfLessThan(KeepAlive, TimeSpan.Zero, nameof(KeepAlive));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(KeepAlive, TimeSpan.FromSeconds(ushort.MaxValue), nameof(KeepAlive));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ConnectTimeout, TimeSpan.Zero, nameof(ConnectTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(DisconnectTimeout, TimeSpan.Zero, nameof(DisconnectTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThan(ReconnectMinDelay, TimeSpan.Zero, nameof(ReconnectMinDelay));
        ArgumentOutOfRangeException.ThrowIfLessThan(ReconnectMaxDelay, ReconnectMinDelay, nameof(ReconnectMaxDelay));
        ArgumentNullException.ThrowIfNull(TimeProvider);
        if (Password is not null && UserName is null)
        {
            throw new ArgumentException("MQTT 3.1.1 sends a password only together with a user name", nameof(Password));
        }

        if (!CleanSession && string.IsNullOrEmpty(ClientId))
        {
            throw new ArgumentException("a persistent session (CleanSession = false) needs a fixed ClientId", nameof(ClientId));
        }

        if (CaCertificateFile is not null && !File.Exists(CaCertificateFile))
        {
            throw new ArgumentException($"CA certificate file '{CaCertificateFile}' not found", nameof(CaCertificateFile));
        }
    }
}
