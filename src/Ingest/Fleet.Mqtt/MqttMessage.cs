using System.Diagnostics;
using System.Text;

namespace Fleet.Mqtt;

/// <summary>One application message received from the broker.</summary>
/// <param name="TopicUtf8">The topic name as UTF-8 bytes (what parsers such as the HFP topic parser read).</param>
/// <param name="Payload">The payload bytes.</param>
/// <param name="Qos">The QoS it was delivered with.</param>
/// <param name="Retain">Whether it is a retained message sent on subscribe.</param>
/// <param name="Duplicate">Whether the broker flagged it as a redelivery (DUP).</param>
/// <remarks>
/// <see cref="TopicUtf8"/> and <see cref="Payload"/> are read-only views into memory the client filled with one copy
/// from its socket read buffer and never reuses, so a consumer may parse them in place, keep them, or hand them on
/// without copying. The client has already acknowledged a QoS 1 message when the consumer sees it: the PUBACK goes
/// out as soon as the bounded receive channel accepted the message.
/// </remarks>
[DebuggerDisplay("{Topic} ({Payload.Length} bytes, QoS {(int)Qos})")]
public readonly record struct MqttMessage(ReadOnlyMemory<byte> TopicUtf8, ReadOnlyMemory<byte> Payload, MqttQos Qos, bool Retain, bool Duplicate)
{
    /// <summary>The topic as a string. Decodes <see cref="TopicUtf8"/> on every call (one allocation): cache it if needed twice.</summary>
    public string Topic => Encoding.UTF8.GetString(TopicUtf8.Span);
}
