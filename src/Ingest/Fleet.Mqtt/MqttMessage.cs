using System.Diagnostics;

namespace Fleet.Mqtt;

/// <summary>One application message received from the broker.</summary>
/// <remarks>
/// <see cref="Payload"/> is a read-only view into memory the client filled once from its socket read buffer and
/// never reuses, so a consumer may parse it in place, keep it, or hand it on without copying. The client has
/// already acknowledged a QoS 1 message when the consumer sees it: the PUBACK goes out as soon as the bounded
/// receive channel accepted the message.
/// </remarks>
[DebuggerDisplay("{Topic} ({Payload.Length} bytes, QoS {(int)Qos})")]
public readonly record struct MqttMessage(string Topic, ReadOnlyMemory<byte> Payload, MqttQos Qos, bool Retain, bool Duplicate);
