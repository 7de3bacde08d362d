using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Fleet.Mqtt.Internal;

/// <summary>MQTT 3.1.1 control packet types (the high nibble of the fixed header).</summary>
internal enum PacketType : byte
{
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
}

/// <summary>Outcome of decoding a remaining-length field.</summary>
internal enum VarIntStatus
{
    /// <summary>Decoded.</summary>
    Done,

    /// <summary>The field continues past the bytes available.</summary>
    NeedMoreData,

    /// <summary>A fifth byte would be needed: not MQTT.</summary>
    Malformed,
}

/// <summary>Encoders and decoders for the MQTT 3.1.1 wire format. Allocation-free except where noted.</summary>
internal static class MqttCodec
{
    /// <summary>Largest value a remaining-length field can carry (4 bytes of 7 bits).</summary>
    public const int MaxRemainingLength = 268_435_455;

    public static ReadOnlySpan<byte> PingReqPacket => [0xC0, 0x00];

    public static ReadOnlySpan<byte> DisconnectPacket => [0xE0, 0x00];

    private static ReadOnlySpan<byte> ProtocolName => [0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T'];

    /// <summary>Bytes needed to encode <paramref name="value"/> as a remaining length.</summary>
    public static int VarIntSize(int value) => value switch
    {
        < 128 => 1,
        < 16_384 => 2,
        < 2_097_152 => 3,
        _ => 4,
    };

    /// <summary>Writes a remaining length; returns the bytes written.</summary>
    public static int WriteVarInt(Span<byte> destination, int value)
    {
        var i = 0;
        do
        {
            var b = (byte)(value & 0x7F);
            value >>= 7;
            destination[i++] = value > 0 ? (byte)(b | 0x80) : b;
        }
        while (value > 0);

        return i;
    }

    /// <summary>Decodes a remaining length from the start of <paramref name="source"/>.</summary>
    public static VarIntStatus TryReadVarInt(ReadOnlySpan<byte> source, out int value, out int consumed)
    {
        value = 0;
        for (var i = 0; i < 4; i++)
        {
            if (i >= source.Length)
            {
                consumed = 0;
                return VarIntStatus.NeedMoreData;
            }

            var b = source[i];
            value |= (b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                consumed = i + 1;
                return VarIntStatus.Done;
            }
        }

        consumed = 0;
        return VarIntStatus.Malformed;
    }

    /// <summary>Writes a CONNECT packet (protocol level 4).</summary>
    public static void WriteConnect(IBufferWriter<byte> writer, string clientId, bool cleanSession, ushort keepAliveSeconds, string? userName, string? password)
    {
        var idBytes = Encoding.UTF8.GetByteCount(clientId);
        var userBytes = userName is null ? 0 : Encoding.UTF8.GetByteCount(userName);
        var passBytes = password is null ? 0 : Encoding.UTF8.GetByteCount(password);
        var remaining = ProtocolName.Length + 1 + 1 + 2 + 2 + idBytes +
            (userName is null ? 0 : 2 + userBytes) + (password is null ? 0 : 2 + passBytes);
        var span = writer.GetSpan(1 + VarIntSize(remaining) + remaining);
        span[0] = (byte)PacketType.Connect << 4;
        var i = 1 + WriteVarInt(span[1..], remaining);
        ProtocolName.CopyTo(span[i..]);
        i += ProtocolName.Length;
        span[i++] = 4; // protocol level: 3.1.1
        byte flags = 0;
        if (cleanSession)
        {
            flags |= 0x02;
        }

        if (userName is not null)
        {
            flags |= 0x80;
        }

        if (password is not null)
        {
            flags |= 0x40;
        }

        span[i++] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(span[i..], keepAliveSeconds);
        i += 2;
        i += WriteString(span[i..], clientId, idBytes);
        if (userName is not null)
        {
            i += WriteString(span[i..], userName, userBytes);
        }

        if (password is not null)
        {
            i += WriteString(span[i..], password, passBytes);
        }

        writer.Advance(i);
    }

    /// <summary>Size of a PUBLISH packet, fixed header included.</summary>
    public static long PublishSize(int topicBytes, int payloadBytes, MqttQos qos)
    {
        var remaining = 2L + topicBytes + (qos == MqttQos.AtMostOnce ? 0 : 2) + payloadBytes;
        return remaining > MaxRemainingLength ? long.MaxValue : 1 + VarIntSize((int)remaining) + remaining;
    }

    /// <summary>
    /// Writes a PUBLISH packet into <paramref name="destination"/> (sized with <see cref="PublishSize"/>); returns
    /// the offset of the packet identifier, or -1 for QoS 0.
    /// </summary>
    public static int WritePublish(Span<byte> destination, string topic, int topicBytes, ReadOnlySpan<byte> payload, MqttQos qos, bool retain, ushort packetId)
    {
        var remaining = 2 + topicBytes + (qos == MqttQos.AtMostOnce ? 0 : 2) + payload.Length;
        destination[0] = (byte)(((byte)PacketType.Publish << 4) | ((byte)qos << 1) | (retain ? 1 : 0));
        var i = 1 + WriteVarInt(destination[1..], remaining);
        i += WriteString(destination[i..], topic, topicBytes);
        var idOffset = -1;
        if (qos != MqttQos.AtMostOnce)
        {
            idOffset = i;
            BinaryPrimitives.WriteUInt16BigEndian(destination[i..], packetId);
            i += 2;
        }

        payload.CopyTo(destination[i..]);
        return idOffset;
    }

    /// <summary>Writes a PUBACK.</summary>
    public static void WritePubAck(Span<byte> destination, ushort packetId)
    {
        destination[0] = (byte)PacketType.PubAck << 4;
        destination[1] = 2;
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], packetId);
    }

    /// <summary>Encodes a SUBSCRIBE packet (allocates the packet array).</summary>
    public static byte[] EncodeSubscribe(ushort packetId, IReadOnlyList<MqttSubscription> subscriptions)
    {
        var remaining = 2;
        foreach (var s in subscriptions)
        {
            remaining += 2 + Encoding.UTF8.GetByteCount(s.TopicFilter) + 1;
        }

        var packet = new byte[1 + VarIntSize(remaining) + remaining];
        packet[0] = ((byte)PacketType.Subscribe << 4) | 0x02;
        var i = 1 + WriteVarInt(packet.AsSpan(1), remaining);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(i), packetId);
        i += 2;
        foreach (var s in subscriptions)
        {
            i += WriteString(packet.AsSpan(i), s.TopicFilter, Encoding.UTF8.GetByteCount(s.TopicFilter));
            packet[i++] = (byte)s.Qos;
        }

        return packet;
    }

    /// <summary>Encodes an UNSUBSCRIBE packet (allocates the packet array).</summary>
    public static byte[] EncodeUnsubscribe(ushort packetId, IReadOnlyList<string> topicFilters)
    {
        var remaining = 2;
        foreach (var f in topicFilters)
        {
            remaining += 2 + Encoding.UTF8.GetByteCount(f);
        }

        var packet = new byte[1 + VarIntSize(remaining) + remaining];
        packet[0] = ((byte)PacketType.Unsubscribe << 4) | 0x02;
        var i = 1 + WriteVarInt(packet.AsSpan(1), remaining);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(i), packetId);
        i += 2;
        foreach (var f in topicFilters)
        {
            i += WriteString(packet.AsSpan(i), f, Encoding.UTF8.GetByteCount(f));
        }

        return packet;
    }

    private static int WriteString(Span<byte> destination, string value, int byteCount)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)byteCount);
        Encoding.UTF8.GetBytes(value, destination[2..]);
        return 2 + byteCount;
    }
}
