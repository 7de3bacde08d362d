namespace Fleet.Mqtt.Internal;

/// <summary>
/// Gives each received payload its own memory by carving it out of 64 KiB slabs: one copy from the read buffer, and
/// one allocation per slab instead of one per message.
/// </summary>
/// <remarks>
/// Slabs are never reused; the GC frees a slab once no payload in it is referenced. A consumer that keeps one small
/// payload therefore keeps its slab alive. Large payloads get an array of their own. Not thread-safe (reader loop only).
/// </remarks>
internal sealed class PayloadArena
{
    private const int SlabSize = 64 * 1024;
    private const int OwnArrayThreshold = SlabSize / 8;

    private byte[] _slab = [];
    private int _offset;

    public ReadOnlyMemory<byte> Copy(ReadOnlySpan<byte> source)
    {
        if (source.IsEmpty)
        {
            return ReadOnlyMemory<byte>.Empty;
        }

        if (source.Length > OwnArrayThreshold)
        {
            return source.ToArray();
        }

        if (_slab.Length - _offset < source.Length)
        {
            _slab = GC.AllocateUninitializedArray<byte>(SlabSize);
            _offset = 0;
        }

        var memory = _slab.AsMemory(_offset, source.Length);
        source.CopyTo(memory.Span);
        _offset += source.Length;
        return memory;
    }
}
