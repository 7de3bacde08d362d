using Fleet.Ingest.Events;

namespace Fleet.Ingest.Hfp;

/// <summary>Maps HFP event type names (topic level, lower case; payload key, upper case) to <see cref="EventType"/>.</summary>
public static class HfpEventTypes
{
    private static readonly string[] s_names =
    [
        "", "VP", "DUE", "ARR", "ARS", "DEP", "PDE", "PAS", "WAIT", "DOO", "DOC", "TLR", "TLA", "DA", "DOUT", "BA", "BOUT", "VJA", "VJOUT",
    ];

    /// <summary>The HFP event types, in enum order.</summary>
    public static IReadOnlyList<EventType> All { get; } = [.. Enumerable.Range(1, 18).Select(i => (EventType)i)];

    /// <summary>The HFP payload key (<c>VP</c>, <c>DUE</c>, ...) of an HFP event type; "" for others.</summary>
    public static string Name(EventType type) => (int)type < s_names.Length ? s_names[(int)type] : string.Empty;

    /// <summary>Maps an upper-case payload key (<c>VP</c>) to the event type; <see cref="EventType.Unknown"/> if none.</summary>
    public static EventType FromPayloadKey(ReadOnlySpan<byte> key) => Lookup(key, upper: true);

    /// <summary>Maps a lower-case topic level (<c>vp</c>) to the event type; <see cref="EventType.Unknown"/> if none.</summary>
    public static EventType FromTopicLevel(ReadOnlySpan<byte> level) => Lookup(level, upper: false);

    private static EventType Lookup(ReadOnlySpan<byte> s, bool upper)
    {
        if (s.Length is < 2 or > 5)
        {
            return EventType.Unknown;
        }

        // Fold to upper case and pack the letters into one number (first letter lowest); a byte outside letters
        // makes the lookup fail. No buffer, no byte-wise compares: one switch on the packed key.
        ulong key = 0;
        for (var i = 0; i < s.Length; i++)
        {
            var b = s[i];
            if (upper ? b is < (byte)'A' or > (byte)'Z' : b is < (byte)'a' or > (byte)'z')
            {
                return EventType.Unknown;
            }

            key |= (ulong)(upper ? b : (byte)(b - 32)) << (8 * i);
        }

        return key switch
        {
            'V' | ('P' << 8) => EventType.Vp,
            'D' | ('A' << 8) => EventType.Da,
            'B' | ('A' << 8) => EventType.Ba,
            'D' | ('U' << 8) | ('E' << 16) => EventType.Due,
            'A' | ('R' << 8) | ('R' << 16) => EventType.Arr,
            'A' | ('R' << 8) | ('S' << 16) => EventType.Ars,
            'D' | ('E' << 8) | ('P' << 16) => EventType.Dep,
            'P' | ('D' << 8) | ('E' << 16) => EventType.Pde,
            'P' | ('A' << 8) | ('S' << 16) => EventType.Pas,
            'D' | ('O' << 8) | ('O' << 16) => EventType.Doo,
            'D' | ('O' << 8) | ('C' << 16) => EventType.Doc,
            'T' | ('L' << 8) | ('R' << 16) => EventType.Tlr,
            'T' | ('L' << 8) | ('A' << 16) => EventType.Tla,
            'V' | ('J' << 8) | ('A' << 16) => EventType.Vja,
            'W' | ('A' << 8) | ('I' << 16) | ('T' << 24) => EventType.Wait,
            'D' | ('O' << 8) | ('U' << 16) | ('T' << 24) => EventType.Dout,
            'B' | ('O' << 8) | ('U' << 16) | ('T' << 24) => EventType.Bout,
            'V' | ('J' << 8) | ('O' << 16) | ('U' << 24) | ((ulong)'T' << 32) => EventType.Vjout,
            _ => EventType.Unknown,
        };
    }
}
