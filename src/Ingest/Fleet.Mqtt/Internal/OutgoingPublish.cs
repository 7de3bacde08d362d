namespace Fleet.Mqtt.Internal;

/// <summary>An encoded QoS 1 PUBLISH awaiting its PUBACK; kept by the client across reconnects for resending.</summary>
internal sealed class OutgoingPublish(byte[] packet, ushort packetId)
{
    /// <summary>The encoded packet. After the first send the DUP flag is set in place, so every resend carries it.</summary>
    public byte[] Packet { get; } = packet;

    public ushort PacketId { get; } = packetId;

    public TaskCompletionSource Acknowledged { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Position in the client's in-flight order (oldest first), for O(1) removal on PUBACK.</summary>
    public LinkedListNode<OutgoingPublish>? Node { get; set; }
}

/// <summary>What the writer loop sends: a PUBACK, an in-flight QoS 1 PUBLISH, or a ready-made packet.</summary>
internal readonly struct OutboxItem
{
    private OutboxItem(ushort packetId, OutgoingPublish? publish, byte[]? packet, int length, bool pooled, TaskCompletionSource? written)
    {
        PacketId = packetId;
        Publish = publish;
        Packet = packet;
        Length = length;
        Pooled = pooled;
        Written = written;
    }

    /// <summary>Packet id of a PUBACK (when <see cref="Publish"/> and <see cref="Packet"/> are null).</summary>
    public ushort PacketId { get; }

    public OutgoingPublish? Publish { get; }

    public byte[]? Packet { get; }

    public int Length { get; }

    /// <summary>Whether <see cref="Packet"/> was rented from the shared pool and goes back after writing.</summary>
    public bool Pooled { get; }

    /// <summary>Completed once the bytes were handed to the socket.</summary>
    public TaskCompletionSource? Written { get; }

    public static OutboxItem PubAck(ushort packetId) => new(packetId, null, null, 4, false, null);

    public static OutboxItem ForPublish(OutgoingPublish publish) => new(0, publish, null, publish.Packet.Length, false, null);

    public static OutboxItem Raw(byte[] packet, int length, bool pooled = false, TaskCompletionSource? written = null) =>
        new(0, null, packet, length, pooled, written);
}
