using System.Buffers.Binary;
using System.Text;

namespace Fleet.Simulation.Output;

/// <summary>
/// A minimal protocol-buffers encoder into a reusable byte buffer: varints, fixed32 floats, strings and nested
/// messages, in the wire format Google.Protobuf writes (a negative int32 is a 10-byte varint, as the spec says).
/// </summary>
/// <remarks>
/// The caller writes fields in field-number order, which is the order Google.Protobuf's generated code uses, so the
/// bytes are identical to serializing the same message with the library (tested). A nested message reserves one byte
/// for its length and moves its content up when the length needs more. Not thread-safe.
/// </remarks>
internal sealed class ProtoWriter
{
    private byte[] _buffer = new byte[1 << 16];

    /// <summary>Bytes written so far.</summary>
    public int Length { get; private set; }

    /// <summary>The encoded message.</summary>
    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, Length);

    /// <summary>Starts over.</summary>
    public void Clear() => Length = 0;

    /// <summary>A varint field of an unsigned value (uint32, uint64).</summary>
    public void UInt64(int field, ulong value)
    {
        Tag(field, 0);
        Varint(value);
    }

    /// <summary>A varint field of a signed value (int32, int64, enum): negative values take ten bytes.</summary>
    public void Int64(int field, long value)
    {
        Tag(field, 0);
        Varint((ulong)value);
    }

    /// <summary>A float field (fixed32, little-endian).</summary>
    public void Float(int field, float value)
    {
        Tag(field, 5);
        Ensure(4);
        BinaryPrimitives.WriteSingleLittleEndian(_buffer.AsSpan(Length), value);
        Length += 4;
    }

    /// <summary>A string field (UTF-8, length-prefixed).</summary>
    public void String(int field, string value)
    {
        Tag(field, 2);
        var count = Encoding.UTF8.GetByteCount(value);
        Varint((ulong)count);
        Ensure(count);
        Length += Encoding.UTF8.GetBytes(value, _buffer.AsSpan(Length));
    }

    /// <summary>Starts a nested message field; returns the mark to pass to <see cref="EndMessage"/>.</summary>
    public int BeginMessage(int field)
    {
        Tag(field, 2);
        Ensure(1);
        return Length++;
    }

    /// <summary>Ends the nested message started at <paramref name="mark"/>: writes its length before it.</summary>
    public void EndMessage(int mark)
    {
        var length = Length - mark - 1;
        var size = VarintSize((ulong)length);
        if (size > 1)
        {
            Ensure(size - 1);
            _buffer.AsSpan(mark + 1, length).CopyTo(_buffer.AsSpan(mark + size));
            Length += size - 1;
        }

        var at = mark;
        var v = (uint)length;
        while (v >= 0x80)
        {
            _buffer[at++] = (byte)(v | 0x80);
            v >>= 7;
        }

        _buffer[at] = (byte)v;
    }

    private void Tag(int field, int wireType) => Varint((ulong)((field << 3) | wireType));

    private void Varint(ulong value)
    {
        Ensure(10);
        while (value >= 0x80)
        {
            _buffer[Length++] = (byte)(value | 0x80);
            value >>= 7;
        }

        _buffer[Length++] = (byte)value;
    }

    private static int VarintSize(ulong value)
    {
        var size = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            size++;
        }

        return size;
    }

    private void Ensure(int extra)
    {
        if (Length + extra > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, Length + extra));
        }
    }
}
