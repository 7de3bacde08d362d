using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Fleet.Mqtt.Internal;

/// <summary>A decoded fixed header: packet type, flags and sizes.</summary>
internal readonly record struct PacketHeader(PacketType Type, byte Flags, int HeaderLength, int RemainingLength)
{
    /// <summary>Fixed header plus body.</summary>
    public int TotalLength => HeaderLength + RemainingLength;
}

/// <summary>
/// The one read buffer of a connection: a pooled array filled from the socket, from which packets are decoded in place.
/// </summary>
/// <remarks>
/// <see cref="EnsureAsync"/> returns a completed <see cref="ValueTask"/> when the bytes are already buffered (the
/// common case: one socket read brings many packets) and only otherwise enters the async slow path, which compacts
/// or grows the buffer and reads until enough bytes arrived. The buffer never grows beyond the maximum packet size,
/// which <see cref="ReadHeaderAsync"/> enforces before any body is awaited. Not thread-safe: one reader loop owns it;
/// <see cref="WaitingSince"/> and <see cref="LastReceive"/> may be read from the keep-alive timer.
/// </remarks>
internal sealed class MqttReadBuffer : IDisposable
{
    private const int InitialSize = 64 * 1024;

    private readonly Stream _stream;
    private readonly int _maxPacketSize;
    private readonly TimeProvider _timeProvider;

    /// <summary>Timestamp when the slow path started waiting on the socket; 0 while not waiting.</summary>
    private long _waitingSince;

    /// <summary>Timestamp of the last bytes received.</summary>
    private long _lastReceive;

    public MqttReadBuffer(Stream stream, int maxPacketSize, TimeProvider timeProvider)
    {
        _stream = stream;
        _maxPacketSize = maxPacketSize;
        _timeProvider = timeProvider;
        Buffer = ArrayPool<byte>.Shared.Rent(Math.Min(InitialSize, maxPacketSize + 5));
        _lastReceive = timeProvider.GetTimestamp();
    }

    /// <summary>The buffer; valid bytes are <c>[ReadPosition, FilledBytes)</c>.</summary>
    public byte[] Buffer { get; private set; }

    public int ReadPosition { get; private set; }

    public int FilledBytes { get; private set; }

    public int Available => FilledBytes - ReadPosition;

    /// <summary>Bytes read from the socket so far.</summary>
    public long BytesRead { get; private set; }

    public long WaitingSince => Volatile.Read(ref _waitingSince);

    public long LastReceive => Volatile.Read(ref _lastReceive);

    /// <summary>The unread bytes starting at <see cref="ReadPosition"/>.</summary>
    public ReadOnlySpan<byte> Span => Buffer.AsSpan(ReadPosition, Available);

    /// <summary>Marks <paramref name="count"/> bytes as consumed.</summary>
    public void Consume(int count)
    {
        Debug.Assert(count <= Available);
        ReadPosition += count;
        if (ReadPosition == FilledBytes)
        {
            // Everything consumed: start over at 0 so the next socket read gets the whole buffer.
            ReadPosition = 0;
            FilledBytes = 0;
        }
    }

    /// <summary>Makes sure at least <paramref name="count"/> unread bytes are buffered.</summary>
    /// <exception cref="EndOfStreamException">The broker closed the connection first.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ValueTask EnsureAsync(int count, CancellationToken cancellationToken)
    {
        return count <= FilledBytes - ReadPosition ? default : EnsureSlowAsync(this, count, cancellationToken);

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
        static async ValueTask EnsureSlowAsync(MqttReadBuffer self, int count, CancellationToken cancellationToken)
        {
            self.MakeRoom(count);
            while (self.Available < count)
            {
                Volatile.Write(ref self._waitingSince, self._timeProvider.GetTimestamp());
                int read;
                try
                {
                    read = await self._stream.ReadAsync(self.Buffer.AsMemory(self.FilledBytes), cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    Volatile.Write(ref self._waitingSince, 0);
                }

                if (read == 0)
                {
                    throw new EndOfStreamException("the broker closed the connection");
                }

                self.FilledBytes += read;
                self.BytesRead += read;
                Volatile.Write(ref self._lastReceive, self._timeProvider.GetTimestamp());
            }
        }
    }

    /// <summary>
    /// Reads a fixed header and checks the packet against the maximum packet size before its body is awaited.
    /// </summary>
    /// <exception cref="MqttProtocolException">The remaining length is malformed.</exception>
    /// <exception cref="MqttPacketTooLargeException">The packet exceeds the maximum packet size.</exception>
    public ValueTask<PacketHeader> ReadHeaderAsync(CancellationToken cancellationToken)
    {
        if (Available >= 2)
        {
            var status = MqttCodec.TryReadVarInt(Span[1..], out var remaining, out var consumed);
            if (status == VarIntStatus.Done)
            {
                return new ValueTask<PacketHeader>(MakeHeader(Buffer[ReadPosition], consumed, remaining));
            }

            if (status == VarIntStatus.Malformed)
            {
                ThrowMalformedLength();
            }
        }

        return ReadHeaderSlowAsync(this, cancellationToken);

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        static async ValueTask<PacketHeader> ReadHeaderSlowAsync(MqttReadBuffer self, CancellationToken cancellationToken)
        {
            // One byte more per round: the remaining length is 1 to 4 bytes and nothing after it may be awaited
            // (a PINGRESP is only 2 bytes long and nothing may follow it).
            for (var need = 2; ; need++)
            {
                await self.EnsureAsync(need, cancellationToken).ConfigureAwait(false);
                var status = MqttCodec.TryReadVarInt(self.Span[1..], out var remaining, out var consumed);
                if (status == VarIntStatus.Done)
                {
                    return self.MakeHeader(self.Buffer[self.ReadPosition], consumed, remaining);
                }

                if (status == VarIntStatus.Malformed)
                {
                    ThrowMalformedLength();
                }
            }
        }
    }

    public void Dispose()
    {
        var buffer = Buffer;
        Buffer = [];
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private PacketHeader MakeHeader(byte first, int lengthBytes, int remaining)
    {
        var header = new PacketHeader((PacketType)(first >> 4), (byte)(first & 0x0F), 1 + lengthBytes, remaining);
        if (header.TotalLength > _maxPacketSize)
        {
            throw new MqttPacketTooLargeException(header.TotalLength, _maxPacketSize);
        }

        return header;
    }

    private void MakeRoom(int count)
    {
        if (count > Buffer.Length)
        {
            // Only a packet larger than the buffer gets here; ReadHeaderAsync already capped it at the maximum size.
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(count, Math.Min(Buffer.Length * 2, _maxPacketSize + 5)));
            Span.CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(Buffer);
            Buffer = bigger;
            FilledBytes = Available;
            ReadPosition = 0;
        }
        else if (ReadPosition + count > Buffer.Length)
        {
            // Compact: move the partial packet to the front so it can be completed in place.
            Span.CopyTo(Buffer);
            FilledBytes = Available;
            ReadPosition = 0;
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowMalformedLength() =>
        throw new MqttProtocolException("malformed MQTT packet: the remaining length field is longer than 4 bytes");
}
