using System.Runtime.InteropServices;
using System.Text;

namespace Fleet.Ingest.Text;

/// <summary>
/// Turns UTF-8 byte spans into shared <see cref="string"/> instances: the first sighting of an id allocates its
/// string, every later sighting returns the same instance without allocating.
/// </summary>
/// <remarks>
/// An open-addressing hash table keyed by the bytes themselves, so a lookup never decodes. Bounded: once it
/// holds <see cref="Capacity"/> entries, unknown keys are decoded and returned without being stored (correct,
/// just not shared), so a stream of garbage ids cannot grow memory without limit.
/// Not thread-safe: use one per ingest loop.
/// </remarks>
public sealed class Utf8Interner
{
    private const int MaxKeyLength = 256;
    private readonly int _capacity;
    private Entry[] _entries;
    private int _count;

    /// <summary>Creates an interner that stores at most <paramref name="capacity"/> distinct ids.</summary>
    public Utf8Interner(int capacity = 1 << 20)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
        _entries = new Entry[64];
    }

    /// <summary>How many distinct ids are stored.</summary>
    public int Count => _count;

    /// <summary>The most ids this interner stores.</summary>
    public int Capacity => _capacity;

    /// <summary>Returns the shared string for <paramref name="utf8"/>, decoding it only on first sight.</summary>
    public string Intern(ReadOnlySpan<byte> utf8)
    {
        if (utf8.IsEmpty)
        {
            return string.Empty;
        }

        if (utf8.Length > MaxKeyLength)
        {
            return Encoding.UTF8.GetString(utf8);
        }

        var hash = Hash(utf8);
        var mask = _entries.Length - 1;
        var i = (int)hash & mask;
        while (true)
        {
            ref var e = ref _entries[i];
            if (e.Key is null)
            {
                break;
            }

            if (e.Hash == hash && utf8.SequenceEqual(e.Key))
            {
                return e.Value;
            }

            i = (i + 1) & mask;
        }

        var value = Encoding.UTF8.GetString(utf8);
        if (_count >= _capacity)
        {
            return value;
        }

        // Keep the load factor under 1/2 so probe chains stay short.
        if ((_count + 1) * 2 > _entries.Length)
        {
            Grow();
            mask = _entries.Length - 1;
            i = (int)hash & mask;
            while (_entries[i].Key is not null)
            {
                i = (i + 1) & mask;
            }
        }

        _entries[i] = new Entry(hash, utf8.ToArray(), value);
        _count++;
        return value;
    }

    private void Grow()
    {
        var old = _entries;
        _entries = new Entry[old.Length * 2];
        var mask = _entries.Length - 1;
        foreach (var e in old)
        {
            if (e.Key is null)
            {
                continue;
            }

            var i = (int)e.Hash & mask;
            while (_entries[i].Key is not null)
            {
                i = (i + 1) & mask;
            }

            _entries[i] = e;
        }
    }

    // FNV-1a over 4-byte words then the tail: ids are short (3 to 20 bytes), so this beats a general hash.
    private static uint Hash(ReadOnlySpan<byte> s)
    {
        var h = 2166136261u;
        var words = MemoryMarshal.Cast<byte, uint>(s);
        foreach (var w in words)
        {
            h = (h ^ w) * 16777619u;
        }

        for (var i = words.Length * 4; i < s.Length; i++)
        {
            h = (h ^ s[i]) * 16777619u;
        }

        return h ^ (h >> 15);
    }

    [StructLayout(LayoutKind.Auto)]
    private readonly record struct Entry(uint Hash, byte[]? Key, string Value);
}
