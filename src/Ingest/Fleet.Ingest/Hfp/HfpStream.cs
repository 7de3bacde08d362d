using System.Text;
using Fleet.Ingest.Events;
using Fleet.Ingest.Recording;

namespace Fleet.Ingest.Hfp;

/// <summary>What <see cref="HfpStream"/> made of one input.</summary>
public enum HfpOutcome : byte
{
    /// <summary>A vehicle event was parsed.</summary>
    Event,

    /// <summary>A GTFS-RT snapshot line: counted, not HFP, not parsed here (Fleet.Gtfs decodes it).</summary>
    GtfsRt,

    /// <summary>Rejected; the reason is counted in <see cref="HfpParser.Rejections"/>.</summary>
    Rejected,
}

/// <summary>
/// Parses a stream of recording lines or MQTT messages with one <see cref="HfpParser"/> and keeps the figures
/// <c>fleet inspect</c> and <c>fleet replay</c> report: messages, events per type, vehicles, rejections, time span.
/// </summary>
/// <remarks>
/// One thread processes; another may read the figures for progress reports (counts may be a message stale).
/// The vehicle set holds the interned id strings, so it grows with the number of vehicles, not messages.
/// </remarks>
public sealed class HfpStream
{
    private readonly long[] _eventTypes = new long[Enum.GetValues<EventType>().Length];
    private readonly HashSet<string> _vehicles = new(StringComparer.Ordinal);
    private long _gtfsRt;
    private long _firstTicks = long.MaxValue;
    private long _lastTicks = long.MinValue;

    /// <summary>Creates a stream over <paramref name="parser"/> (a new one when null).</summary>
    public HfpStream(HfpParser? parser = null) => Parser = parser ?? new HfpParser();

    /// <summary>The parser, with the rejection counts.</summary>
    public HfpParser Parser { get; }

    /// <summary>HFP messages and malformed lines seen: <see cref="Parsed"/> plus every rejection.</summary>
    public long Messages => Parsed + Parser.Rejections.Total;

    /// <summary>Events parsed.</summary>
    public long Parsed => Parser.Parsed;

    /// <summary>Rejections per reason.</summary>
    public RejectionCounts Rejections => Parser.Rejections;

    /// <summary>GTFS-RT snapshot lines seen.</summary>
    public long GtfsRtSnapshots => Volatile.Read(ref _gtfsRt);

    /// <summary>Distinct vehicle ids among parsed events.</summary>
    public int Vehicles => _vehicles.Count;

    /// <summary>Earliest receive time seen (any line with a readable time), UTC.</summary>
    public DateTime? First => Volatile.Read(ref _firstTicks) is var t && t != long.MaxValue ? new DateTime(t, DateTimeKind.Utc) : null;

    /// <summary>Latest receive time seen, UTC.</summary>
    public DateTime? Last => Volatile.Read(ref _lastTicks) is var t && t != long.MinValue ? new DateTime(t, DateTimeKind.Utc) : null;

    /// <summary>Events parsed of one type.</summary>
    public long EventsOfType(EventType type) => Volatile.Read(ref _eventTypes[(int)type]);

    /// <summary>Processes one recording line.</summary>
    public HfpOutcome Process(in RecordingLine line, out VehicleEvent ev) =>
        Process(line.Kind, line.ReceiveTime, line.Topic, line.Payload, line.Rejection, line.LineNumber, out ev);

    /// <summary>Processes one replayed message.</summary>
    public HfpOutcome Process(RecordedMessage message, out VehicleEvent ev)
    {
        ArgumentNullException.ThrowIfNull(message);
        return Process(message.Kind, message.ReceiveTime, message.Topic.Span, message.Payload.Span, message.Rejection, message.LineNumber, out ev);
    }

    /// <summary>Processes one MQTT message received live.</summary>
    public HfpOutcome Process(ReadOnlySpan<byte> topic, ReadOnlySpan<byte> payload, DateTime receiveTime, out VehicleEvent ev) =>
        Process(RecordKind.Message, receiveTime, topic, payload, RejectReason.None, 0, out ev);

    private HfpOutcome Process(RecordKind kind, DateTime receiveTime, ReadOnlySpan<byte> topic, ReadOnlySpan<byte> payload,
        RejectReason rejection, long lineNumber, out VehicleEvent ev)
    {
        ev = default;
        SeeTime(receiveTime);
        switch (kind)
        {
            case RecordKind.GtfsRt:
                Volatile.Write(ref _gtfsRt, _gtfsRt + 1);
                return HfpOutcome.GtfsRt;
            case RecordKind.Malformed:
                Parser.CountRejection(rejection, Encoding.UTF8.GetBytes($"line {lineNumber}"), "malformed recording line");
                return HfpOutcome.Rejected;
        }

        if (!Parser.TryParse(topic, payload, receiveTime, out ev, out _))
        {
            return HfpOutcome.Rejected;
        }

        Count(in ev);
        return HfpOutcome.Event;
    }

    /// <summary>Counts an event parsed elsewhere (e.g. by <see cref="HfpCsvReader"/>), including its receive time.</summary>
    public void Count(in VehicleEvent ev)
    {
        SeeTime(ev.ReceiveTime);
        ref var c = ref _eventTypes[(int)ev.Type];
        Volatile.Write(ref c, c + 1);
        _vehicles.Add(ev.VehicleId);
    }

    private void SeeTime(DateTime receiveTime)
    {
        if (receiveTime == default)
        {
            return;
        }

        var ticks = receiveTime.Ticks;
        if (ticks < _firstTicks)
        {
            Volatile.Write(ref _firstTicks, ticks);
        }

        if (ticks > _lastTicks)
        {
            Volatile.Write(ref _lastTicks, ticks);
        }
    }
}
