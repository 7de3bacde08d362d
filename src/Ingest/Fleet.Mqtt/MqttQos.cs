namespace Fleet.Mqtt;

/// <summary>MQTT quality of service. QoS 2 is not supported by this client.</summary>
public enum MqttQos : byte
{
    /// <summary>At most once: no acknowledgement.</summary>
    AtMostOnce = 0,

    /// <summary>At least once: acknowledged with PUBACK, redelivered with DUP until then.</summary>
    AtLeastOnce = 1,
}
