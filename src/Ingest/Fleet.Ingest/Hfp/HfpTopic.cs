using System.Runtime.InteropServices;
using System.Text;
using Fleet.Ingest.Events;

namespace Fleet.Ingest.Hfp;

/// <summary>
/// The levels of an HFP MQTT topic, as ranges into the topic bytes (nothing is copied).
/// </summary>
/// <remarks>
/// <para>v2: <c>/hfp/v2/&lt;journey_type&gt;/&lt;temporal_type&gt;/&lt;event_type&gt;/&lt;mode&gt;/&lt;operator&gt;/&lt;vehicle&gt;/&lt;route&gt;/&lt;direction&gt;/&lt;headsign&gt;/&lt;start&gt;/&lt;next_stop&gt;/&lt;geohash_level&gt;/&lt;geohash&gt;/&lt;sid&gt;</c>;
/// v1 is the same without <c>event_type</c>. The geohash spans four levels (<c>60;24/28/65/93</c>).</para>
/// <para>Levels after the vehicle may be missing (deadrun topics end at the vehicle); a missing or empty level is
/// an empty range. The headsign may contain spaces and any UTF-8 text, but no <c>/</c>.</para>
/// <para>An immutable value once parsed; use the range properties with the same topic span it was parsed from.</para>
/// </remarks>
[StructLayout(LayoutKind.Auto)]
public readonly struct HfpTopic
{
    /// <summary>Protocol version: 1 or 2.</summary>
    public int Version { get; init; }

    /// <summary>The journey type level.</summary>
    public JourneyType Journey { get; init; }

    /// <summary>True for the <c>upcoming</c> temporal type (the message is about the vehicle's next journey).</summary>
    public bool Upcoming { get; init; }

    /// <summary>The event type level (v2); <see cref="EventType.Vp"/> for v1, which only carries positions.</summary>
    public EventType EventType { get; init; }

    /// <summary>The transport mode level.</summary>
    public TransportMode Mode { get; init; }

    /// <summary><c>operator/vehicle</c>, e.g. <c>0018/01029</c>: the vehicle id.</summary>
    public Range VehicleId { get; init; }

    /// <summary>The operator level (zero padded, 4 digits in HSL's feed).</summary>
    public Range Operator { get; init; }

    /// <summary>The vehicle number level (zero padded, 5 digits in HSL's feed).</summary>
    public Range Vehicle { get; init; }

    /// <summary>The route id level.</summary>
    public Range Route { get; init; }

    /// <summary>The direction level, <c>1</c> or <c>2</c>.</summary>
    public Range Direction { get; init; }

    /// <summary>The headsign level (UTF-8, may contain spaces).</summary>
    public Range Headsign { get; init; }

    /// <summary>The journey start time level, <c>HH:mm</c>.</summary>
    public Range StartTime { get; init; }

    /// <summary>The next stop level (a stop id, or <c>EOL</c> at the end of the line).</summary>
    public Range NextStop { get; init; }

    /// <summary>The geohash level number.</summary>
    public Range GeohashLevel { get; init; }

    /// <summary>The geohash, up to four levels with their separators (<c>60;24/28/65/93</c>).</summary>
    public Range Geohash { get; init; }

    /// <summary>The junction id level of traffic light events.</summary>
    public Range Sid { get; init; }

    /// <summary>Decodes the headsign (allocates; for display, not for the hot path).</summary>
    public string GetHeadsign(ReadOnlySpan<byte> topic) => Encoding.UTF8.GetString(topic[Headsign]);

    /// <summary>
    /// Parses an HFP topic. Returns false when it is not <c>[/]hfp/v1|v2/...</c>, a known level has an unknown
    /// value where one is required (journey type), or the operator or vehicle level is missing.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> topic, out HfpTopic result)
    {
        result = default;
        var pos = topic.Length > 0 && topic[0] == '/' ? 1 : 0;

        // Fixed prefix "hfp/v1/" or "hfp/v2/".
        var rest = topic[pos..];
        if (rest.Length < 7 || !rest.StartsWith("hfp/v"u8) || rest[6] != '/' || (rest[5] != '1' && rest[5] != '2'))
        {
            return false;
        }

        var version = rest[5] - '0';
        pos += 7;

        var journeySeg = Next(topic, ref pos);
        var journey = ParseJourney(topic[journeySeg]);
        if (journey == JourneyType.Unknown)
        {
            return false;
        }

        var temporal = topic[Next(topic, ref pos)];
        var eventType = EventType.Vp;
        if (version == 2)
        {
            eventType = HfpEventTypes.FromTopicLevel(topic[Next(topic, ref pos)]);
        }

        var mode = ParseMode(topic[Next(topic, ref pos)]);
        var oper = Next(topic, ref pos);
        var veh = Next(topic, ref pos);
        if (oper.Start.Value == oper.End.Value || veh.Start.Value == veh.End.Value)
        {
            return false;
        }

        var route = Next(topic, ref pos);
        var dir = Next(topic, ref pos);
        var headsign = Next(topic, ref pos);
        var start = Next(topic, ref pos);
        var nextStop = Next(topic, ref pos);
        var ghLevel = Next(topic, ref pos);

        // The geohash is four levels: "lat;lon" and three digit pairs.
        var ghStart = pos;
        var ghEnd = pos;
        for (var i = 0; i < 4 && pos <= topic.Length; i++)
        {
            ghEnd = Next(topic, ref pos).End.Value;
        }

        var sid = Next(topic, ref pos);

        result = new HfpTopic
        {
            Version = version,
            Journey = journey,
            Upcoming = temporal.SequenceEqual("upcoming"u8),
            EventType = eventType,
            Mode = mode,
            Operator = oper,
            Vehicle = veh,
            VehicleId = oper.Start..veh.End,
            Route = route,
            Direction = dir,
            Headsign = headsign,
            StartTime = start,
            NextStop = nextStop,
            GeohashLevel = ghLevel,
            Geohash = ghStart < topic.Length ? ghStart..Math.Max(ghStart, ghEnd) : default,
            Sid = sid,
        };
        return true;
    }

    // Returns the level starting at pos and moves pos past its '/'. Past the end it returns an empty range and
    // leaves pos beyond the end, so missing trailing levels read as empty.
    private static Range Next(ReadOnlySpan<byte> topic, ref int pos)
    {
        if (pos > topic.Length)
        {
            return default;
        }

        // Levels are a few bytes long: a plain loop beats the call into a vectorized IndexOf (seen in the profile).
        var start = pos;
        var end = start;
        while (end < topic.Length && topic[end] != (byte)'/')
        {
            end++;
        }

        pos = end + 1;
        return start..end;
    }

    private static JourneyType ParseJourney(ReadOnlySpan<byte> s)
    {
        if (s.SequenceEqual("journey"u8))
        {
            return JourneyType.Journey;
        }

        if (s.SequenceEqual("deadrun"u8))
        {
            return JourneyType.Deadrun;
        }

        return s.SequenceEqual("signoff"u8) ? JourneyType.Signoff : JourneyType.Unknown;
    }

    private static TransportMode ParseMode(ReadOnlySpan<byte> s) => s.Length switch
    {
        3 when s.SequenceEqual("bus"u8) => TransportMode.Bus,
        4 when s.SequenceEqual("tram"u8) => TransportMode.Tram,
        4 when s.SequenceEqual("ubus"u8) => TransportMode.UBus,
        5 when s.SequenceEqual("train"u8) => TransportMode.Train,
        5 when s.SequenceEqual("metro"u8) => TransportMode.Metro,
        5 when s.SequenceEqual("ferry"u8) => TransportMode.Ferry,
        5 when s.SequenceEqual("robot"u8) => TransportMode.Robot,
        _ => TransportMode.Unknown,
    };
}
