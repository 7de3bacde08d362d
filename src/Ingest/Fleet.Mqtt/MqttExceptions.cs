namespace Fleet.Mqtt;

/// <summary>Base class of every failure the MQTT client reports.</summary>
/// <remarks>
/// <see cref="IsTransient"/> drives the reconnect policy: a transient failure (I/O error, broker restart,
/// keep-alive timeout, server unavailable) is retried with backoff; anything else (bad credentials,
/// protocol violation, oversized packet) stops the client, because retrying would fail the same way.
/// </remarks>
public class MqttException : Exception
{
    /// <summary>Creates an exception.</summary>
    public MqttException(string message, bool isTransient, Exception? innerException = null)
        : base(message, innerException) => IsTransient = isTransient;

    /// <summary>Creates a non-transient exception.</summary>
    public MqttException()
        : this("MQTT failure", false)
    {
    }

    /// <summary>Creates a non-transient exception.</summary>
    public MqttException(string message)
        : this(message, false)
    {
    }

    /// <summary>Creates a non-transient exception.</summary>
    public MqttException(string message, Exception innerException)
        : this(message, false, innerException)
    {
    }

    /// <summary>Whether reconnecting may succeed.</summary>
    public bool IsTransient { get; }
}

/// <summary>The broker refused the CONNECT (a CONNACK with a non-zero return code).</summary>
public sealed class MqttConnectException : MqttException
{
    /// <summary>Creates the exception for a CONNACK return code.</summary>
    public MqttConnectException(MqttConnectReturnCode returnCode, string broker)
        : base(
            $"MQTT broker {broker} refused the connection: {Describe(returnCode)} (CONNACK return code {(int)returnCode})",
            returnCode == MqttConnectReturnCode.ServerUnavailable)
        => ReturnCode = returnCode;

    /// <summary>The CONNACK return code.</summary>
    public MqttConnectReturnCode ReturnCode { get; }

    /// <summary>The MQTT 3.1.1 name of a return code, in words.</summary>
    public static string Describe(MqttConnectReturnCode returnCode) => returnCode switch
    {
        MqttConnectReturnCode.Accepted => "accepted",
        MqttConnectReturnCode.UnacceptableProtocolVersion => "unacceptable protocol version (the broker does not speak MQTT 3.1.1)",
        MqttConnectReturnCode.IdentifierRejected => "identifier rejected (the client id is not allowed)",
        MqttConnectReturnCode.ServerUnavailable => "server unavailable",
        MqttConnectReturnCode.BadUserNameOrPassword => "bad user name or password",
        MqttConnectReturnCode.NotAuthorized => "not authorized (wrong or missing credentials, or this client may not connect)",
        _ => "unknown return code",
    };
}

/// <summary>CONNACK return codes of MQTT 3.1.1 (section 3.2.2.3).</summary>
public enum MqttConnectReturnCode : byte
{
    /// <summary>Connection accepted.</summary>
    Accepted = 0,

    /// <summary>The broker does not support protocol level 4.</summary>
    UnacceptableProtocolVersion = 1,

    /// <summary>The client identifier is not allowed.</summary>
    IdentifierRejected = 2,

    /// <summary>The MQTT service is unavailable.</summary>
    ServerUnavailable = 3,

    /// <summary>The user name or password is malformed or wrong.</summary>
    BadUserNameOrPassword = 4,

    /// <summary>The client is not authorized to connect.</summary>
    NotAuthorized = 5,
}

/// <summary>The broker sent bytes that are not valid MQTT 3.1.1, or a packet this client never asked for.</summary>
public sealed class MqttProtocolException : MqttException
{
    /// <summary>Creates the exception.</summary>
    public MqttProtocolException(string message)
        : base(message, false)
    {
    }

    /// <summary>Creates the exception.</summary>
    public MqttProtocolException()
        : this("MQTT protocol violation")
    {
    }

    /// <summary>Creates the exception.</summary>
    public MqttProtocolException(string message, Exception innerException)
        : base(message, false, innerException)
    {
    }
}

/// <summary>A packet larger than <see cref="MqttClientOptions.MaxPacketSize"/> arrived; the connection was broken.</summary>
public sealed class MqttPacketTooLargeException : MqttException
{
    /// <summary>Creates the exception.</summary>
    public MqttPacketTooLargeException(long packetSize, int maxPacketSize)
        : base(
            $"MQTT packet of {packetSize} bytes exceeds the maximum packet size of {maxPacketSize} bytes; connection broken " +
            "(raise MqttClientOptions.MaxPacketSize if such messages are expected)",
            false)
    {
        PacketSize = packetSize;
        MaxPacketSize = maxPacketSize;
    }

    /// <summary>The size the fixed header announced (fixed header included).</summary>
    public long PacketSize { get; }

    /// <summary>The configured limit.</summary>
    public int MaxPacketSize { get; }
}
