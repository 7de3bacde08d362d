using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace Fleet.Actors;

/// <summary>
/// MurmurHash3 (x86, 32-bit) over the UTF-8 bytes of a string: the shard id function.
/// </summary>
/// <remarks>
/// Stable across processes, machines and .NET versions, unlike <see cref="string.GetHashCode()"/>, which is
/// randomized per process and would scatter persisted entities over different shards after a restart.
/// Thread-safe; allocation-free for ids up to 256 characters.
/// </remarks>
public static class StableHash
{
    private const uint C1 = 0xcc9e2d51;
    private const uint C2 = 0x1b873593;

    /// <summary>Hashes the UTF-8 encoding of <paramref name="value"/> with seed 0.</summary>
    public static uint Murmur3(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length <= 256)
        {
            Span<byte> buffer = stackalloc byte[256 * 3];
            var length = Encoding.UTF8.GetBytes(value, buffer);
            return Murmur3(buffer[..length]);
        }

        var rented = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetMaxByteCount(value.Length));
        try
        {
            var length = Encoding.UTF8.GetBytes(value, rented);
            return Murmur3(rented.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Hashes <paramref name="data"/> with the given seed.</summary>
    public static uint Murmur3(ReadOnlySpan<byte> data, uint seed = 0)
    {
        var h = seed;
        var blocks = data.Length / 4;
        for (var i = 0; i < blocks; i++)
        {
            var k = BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(i * 4, 4));
            k *= C1;
            k = BitOperations.RotateLeft(k, 15);
            k *= C2;
            h ^= k;
            h = BitOperations.RotateLeft(h, 13);
            h = (h * 5) + 0xe6546b64;
        }

        var tail = data[(blocks * 4)..];
        uint k1 = 0;
        switch (tail.Length)
        {
            case 3:
                k1 ^= (uint)tail[2] << 16;
                goto case 2;
            case 2:
                k1 ^= (uint)tail[1] << 8;
                goto case 1;
            case 1:
                k1 ^= tail[0];
                k1 *= C1;
                k1 = BitOperations.RotateLeft(k1, 15);
                k1 *= C2;
                h ^= k1;
                break;
        }

        h ^= (uint)data.Length;
        h ^= h >> 16;
        h *= 0x85ebca6b;
        h ^= h >> 13;
        h *= 0xc2b2ae35;
        h ^= h >> 16;
        return h;
    }

    /// <summary>The shard an entity belongs to: <c>Murmur3(entityId) % shardCount</c>.</summary>
    public static int ShardOf(string entityId, int shardCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(shardCount);
        return (int)(Murmur3(entityId) % (uint)shardCount);
    }
}
