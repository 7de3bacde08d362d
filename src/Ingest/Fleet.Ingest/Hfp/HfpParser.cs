using System.Buffers.Text;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Json;
using Fleet.Ingest.Events;
using Fleet.Ingest.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Fleet.Ingest.Hfp;

/// <summary>Settings of an <see cref="HfpParser"/>.</summary>
public sealed class HfpParserOptions
{
    /// <summary>Payloads larger than this are rejected as <see cref="RejectReason.Oversized"/> (default 64 KiB; HFP messages are under 1 KiB).</summary>
    public int MaxPayloadBytes { get; set; } = 64 * 1024;

    /// <summary>The most distinct ids (vehicles, routes, stops together) kept interned (default 1,048,576).</summary>
    public int InternCapacity { get; set; } = 1 << 20;

    /// <summary>The most rejection log lines per <see cref="RejectionLogWindow"/> (default 10); the rest are only counted.</summary>
    public int RejectionLogLimit { get; set; } = 10;

    /// <summary>The window of <see cref="RejectionLogLimit"/> (default 1 minute).</summary>
    public TimeSpan RejectionLogWindow { get; set; } = TimeSpan.FromMinutes(1);
}

/// <summary>
/// Parses HSL HFP v1/v2 MQTT messages (topic and JSON payload, as UTF-8 bytes) into <see cref="VehicleEvent"/>s.
/// </summary>
/// <remarks>
/// <para>Conventions (see <see cref="VehicleEvent"/>): the vehicle id is the topic's <c>operator/vehicle</c>;
/// <c>dl</c> is negated so a late vehicle has a positive delay; direction 1|2 becomes 0|1; speed stays in m/s;
/// times are UTC. Route, direction and start time come from the payload, else from the topic; the stop is the
/// payload's <c>stop</c>, else the topic's next stop.</para>
/// <para>A message with explicit <c>"lat":null,"long":null</c> is HFP's "no fix" and is accepted without a position
/// (<see cref="VehicleEvent.HasPosition"/> is false); a position message without the fields at all, with only one of
/// them, or with out-of-range values is rejected.</para>
/// <para>Every failure is a <see cref="RejectReason"/>: counted in <see cref="Rejections"/>, logged at a bounded rate,
/// never thrown. Ids (vehicle, route, stop) are interned by their UTF-8 bytes, so a steady stream allocates nothing
/// per message.</para>
/// <para>Not thread-safe: one parser per ingest loop.</para>
/// </remarks>
public sealed class HfpParser
{
    private const ulong KDesi = 0x0400000069736564;
    private const ulong KDir = 0x0300000000726964;
    private const ulong KOper = 0x040000007265706F;
    private const ulong KVeh = 0x0300000000686576;
    private const ulong KTst = 0x0300000000747374;
    private const ulong KTsi = 0x0300000000697374;
    private const ulong KSpd = 0x0300000000647073;
    private const ulong KHdg = 0x0300000000676468;
    private const ulong KLat = 0x030000000074616C;
    private const ulong KLong = 0x04000000676E6F6C;
    private const ulong KAcc = 0x0300000000636361;
    private const ulong KDl = 0x0200000000006C64;
    private const ulong KOdo = 0x03000000006F646F;
    private const ulong KDrst = 0x0400000074737264;
    private const ulong KOday = 0x040000007961646F;
    private const ulong KJrn = 0x03000000006E726A;
    private const ulong KLine = 0x04000000656E696C;
    private const ulong KStart = 0x0500007472617473;
    private const ulong KLoc = 0x0300000000636F6C;
    private const ulong KStop = 0x04000000706F7473;
    private const ulong KRoute = 0x0500006574756F72;
    private const ulong KOccu = 0x040000007563636F;
    private const ulong KTtarr = 0x0500007272617474;
    private const ulong KTtdep = 0x0500007065647474;

    // A journey whose start (read as UTC on the operating day) lies this far before the event started after
    // midnight: HFP writes 00:15, GTFS 24:15. Wide enough for any time zone offset, narrow enough for any trip.
    private static readonly TimeSpan s_afterMidnightThreshold = TimeSpan.FromHours(14);

    private readonly HfpParserOptions _options;
    private readonly ILogger _logger;
    private readonly LogRateLimiter _logLimiter;
    private readonly Utf8Interner _ids;
    private long _parsed;
    private long _withoutPosition;

    /// <summary>Creates a parser.</summary>
    public HfpParser(ILogger<HfpParser>? logger = null, HfpParserOptions? options = null, TimeProvider? timeProvider = null)
    {
        _options = options ?? new HfpParserOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxPayloadBytes, 16);
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _logLimiter = new LogRateLimiter(timeProvider ?? TimeProvider.System, _options.RejectionLogLimit, _options.RejectionLogWindow);
        _ids = new Utf8Interner(_options.InternCapacity);
    }

    /// <summary>Rejections so far, per reason.</summary>
    public RejectionCounts Rejections { get; } = new();

    /// <summary>Messages parsed successfully so far.</summary>
    public long Parsed => Volatile.Read(ref _parsed);

    /// <summary>Parsed messages that had no position (HFP's explicit null coordinates).</summary>
    public long ParsedWithoutPosition => Volatile.Read(ref _withoutPosition);

    /// <summary>The id interner, for callers that intern ids of their own (e.g. a CSV reader).</summary>
    public Utf8Interner Ids => _ids;

    /// <summary>
    /// Parses one message. On success returns true with <paramref name="result"/> filled; otherwise returns false
    /// with the <paramref name="reason"/>, which has already been counted and (rate-limited) logged.
    /// </summary>
    public bool TryParse(ReadOnlySpan<byte> topic, ReadOnlySpan<byte> payload, DateTime receiveTime, out VehicleEvent result, out RejectReason reason)
    {
        result = default;
        if (payload.Length > _options.MaxPayloadBytes)
        {
            return Fail(RejectReason.Oversized, topic, "payload larger than MaxPayloadBytes", out reason);
        }

        if (!HfpTopic.TryParse(topic, out var t))
        {
            return Fail(RejectReason.BadTopic, topic, "not an HFP v1/v2 topic with operator and vehicle", out reason);
        }

        var ev = VehicleEvent.Empty;
        ev.Source = EventSource.Hfp;
        ev.ReceiveTime = receiveTime;
        ev.Journey = t.Journey;
        ev.Mode = t.Mode;
        ev.Upcoming = t.Upcoming;

        var fields = new PayloadFields();
        reason = ParsePayload(payload, ref ev, ref fields);
        if (reason != RejectReason.None)
        {
            return Fail(reason, topic, Describe(reason), out reason);
        }

        if (t.EventType != EventType.Unknown && t.EventType != ev.Type)
        {
            return Fail(RejectReason.EventTypeMismatch, topic, "topic and payload event types differ", out reason);
        }

        ev.VehicleId = _ids.Intern(topic[t.VehicleId]);
        if (ev.RouteId is null && !topic[t.Route].IsEmpty)
        {
            ev.RouteId = _ids.Intern(topic[t.Route]);
        }

        if (ev.DirectionId < 0)
        {
            var dir = topic[t.Direction];
            ev.DirectionId = dir.Length == 1 && dir[0] is (byte)'1' or (byte)'2' ? (sbyte)(dir[0] - '1') : (sbyte)-1;
        }

        if (ev.StopId is null)
        {
            var next = topic[t.NextStop];
            if (!next.IsEmpty && !next.SequenceEqual("EOL"u8))
            {
                ev.StopId = _ids.Intern(next);
            }
        }

        if (ev.StartTimeSeconds < 0 && Iso8601.TryParseTimeOfDay(topic[t.StartTime], out var start))
        {
            ev.StartTimeSeconds = start;
        }

        Finish(ref ev);
        result = ev;
        return true;
    }

    /// <summary>
    /// Parses a payload that has no topic (CSV exports, hand-made feeds): the vehicle id is built from the payload's
    /// <c>oper</c> and <c>veh</c>, zero padded as in the topic (<c>0040/00601</c>); journey and mode are unknown.
    /// Rejections are counted and logged as in <see cref="TryParse"/>.
    /// </summary>
    public bool TryParsePayload(ReadOnlySpan<byte> payload, DateTime receiveTime, out VehicleEvent result, out RejectReason reason)
    {
        result = default;
        var ev = VehicleEvent.Empty;
        ev.Source = EventSource.Hfp;
        ev.ReceiveTime = receiveTime;
        var fields = new PayloadFields();
        reason = ParsePayload(payload, ref ev, ref fields);
        if (reason != RejectReason.None)
        {
            return Fail(reason, "(no topic)"u8, Describe(reason), out reason);
        }

        if (fields.Operator is < 0 or > 9999 || fields.Vehicle is < 0 or > 99999)
        {
            return Fail(RejectReason.BadFieldValue, "(no topic)"u8, "oper/veh missing or out of range", out reason);
        }

        Span<byte> id = stackalloc byte[10];
        WriteDigits(id[..4], fields.Operator);
        id[4] = (byte)'/';
        WriteDigits(id[5..], fields.Vehicle);
        ev.VehicleId = _ids.Intern(id);
        Finish(ref ev);
        result = ev;
        return true;

        static void WriteDigits(Span<byte> into, int value)
        {
            for (var i = into.Length - 1; i >= 0; i--)
            {
                into[i] = (byte)('0' + (value % 10));
                value /= 10;
            }
        }
    }

    /// <summary>
    /// Counts and (rate-limited) logs a rejection found outside the parser, e.g. a malformed recording line,
    /// so one <see cref="Rejections"/> holds every rejection of a stream.
    /// </summary>
    public void CountRejection(RejectReason reason, ReadOnlySpan<byte> context, string detail)
    {
        ArgumentException.ThrowIfNullOrEmpty(detail);
        Fail(reason, context, detail, out _);
    }

    /// <summary>Fills in what needs several fields: the after-midnight start time; counts the success.</summary>
    internal void Finish(ref VehicleEvent ev)
    {
        if (ev.OperatingDay is { } oday && ev.StartTimeSeconds is >= 0 and < 86400)
        {
            var startAsUtc = oday.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc).AddSeconds(ev.StartTimeSeconds);
            if (ev.EventTime - startAsUtc > s_afterMidnightThreshold)
            {
                ev.StartTimeSeconds += 86400;
            }
        }

        _parsed++;
        if (!ev.HasPosition)
        {
            _withoutPosition++;
        }
    }

    /// <summary>The payload's own <c>oper</c>/<c>veh</c>, which only a topic-less source (CSV) needs.</summary>
    internal struct PayloadFields
    {
        public int Operator;
        public int Vehicle;
    }

    /// <summary>Parses <c>{"TYPE":{...}}</c> into <paramref name="ev"/>; returns the rejection reason or None.</summary>
    internal RejectReason ParsePayload(ReadOnlySpan<byte> payload, ref VehicleEvent ev, ref PayloadFields fields)
    {
        if (payload.Length > _options.MaxPayloadBytes)
        {
            return RejectReason.Oversized;
        }

        fields.Operator = -1;
        fields.Vehicle = -1;
        try
        {
            return ParseJson(payload, ref ev, ref fields);
        }
        catch (JsonException)
        {
            return RejectReason.BadJson;
        }
    }

    private RejectReason ParseJson(ReadOnlySpan<byte> payload, ref VehicleEvent ev, ref PayloadFields fields)
    {
        // isFinalBlock: false makes Read() return false at a premature end instead of throwing, which is how a
        // cut-off message is told apart from a malformed one.
        var r = new Utf8JsonReader(payload, isFinalBlock: false, state: default);
        if (!r.Read())
        {
            return RejectReason.TruncatedLine;
        }

        if (r.TokenType != JsonTokenType.StartObject)
        {
            return RejectReason.BadJson;
        }

        if (!r.Read())
        {
            return RejectReason.TruncatedLine;
        }

        if (r.TokenType != JsonTokenType.PropertyName)
        {
            return RejectReason.BadJson;
        }

        ev.Type = HfpEventTypes.FromPayloadKey(r.ValueSpan);
        if (ev.Type == EventType.Unknown)
        {
            return RejectReason.UnknownEventType;
        }

        if (!r.Read())
        {
            return RejectReason.TruncatedLine;
        }

        if (r.TokenType != JsonTokenType.StartObject)
        {
            return RejectReason.BadJson;
        }

        bool seenLat = false, seenLong = false, seenTime = false;
        long tsi = long.MinValue;
        while (true)
        {
            if (!r.Read())
            {
                return RejectReason.TruncatedLine;
            }

            if (r.TokenType == JsonTokenType.EndObject)
            {
                break;
            }

            var key = NameKey(r.ValueSpan, r.ValueIsEscaped);
            if (!r.Read())
            {
                return RejectReason.TruncatedLine;
            }

            var ok = true;
            switch (key)
            {
                case KTst:
                    seenTime = r.TokenType != JsonTokenType.Null;
                    ok = !seenTime || ReadTime(ref r, out ev.EventTime);
                    break;
                case KTsi:
                    if (r.TokenType == JsonTokenType.Number && r.TryGetInt64(out var s))
                    {
                        tsi = s;
                    }

                    break;
                case KLat:
                    seenLat = true;
                    ok = ReadDouble(ref r, out ev.Latitude);
                    break;
                case KLong:
                    seenLong = true;
                    ok = ReadDouble(ref r, out ev.Longitude);
                    break;
                case KSpd:
                    ok = ReadFloat(ref r, out ev.Speed);
                    break;
                case KHdg:
                    ok = ReadFloat(ref r, out ev.Heading);
                    break;
                case KAcc:
                    ok = ReadFloat(ref r, out ev.Acceleration);
                    break;
                case KOdo:
                    ok = ReadDouble(ref r, out ev.Odometer);
                    break;
                case KDl:
                    ok = ReadInt(ref r, out var dl);
                    // HFP dl is negative when late; ours is positive when late (as GTFS-RT).
                    ev.DelaySeconds = dl == int.MinValue ? null : -dl;
                    break;
                case KDrst:
                    ok = ReadInt(ref r, out var drst) && drst is int.MinValue or 0 or 1;
                    ev.Doors = drst == int.MinValue ? (sbyte)-1 : (sbyte)drst;
                    break;
                case KDir:
                    ok = ReadInt(ref r, out var dir) && dir is int.MinValue or 1 or 2;
                    ev.DirectionId = dir == int.MinValue ? (sbyte)-1 : (sbyte)(dir - 1);
                    break;
                case KOday:
                    ok = ReadDate(ref r, out ev.OperatingDay);
                    break;
                case KStart:
                    ok = ReadTimeOfDay(ref r, out ev.StartTimeSeconds);
                    break;
                case KJrn:
                    ok = ReadInt(ref r, out var jrn);
                    ev.JourneyNumber = jrn == int.MinValue ? -1 : jrn;
                    break;
                case KOccu:
                    ok = ReadInt(ref r, out var occu) && occu is int.MinValue or (>= 0 and <= 100);
                    ev.Occupancy = occu == int.MinValue ? -1 : occu;
                    break;
                case KLoc:
                    ok = ReadLocation(ref r, out ev.Location);
                    break;
                case KStop:
                    ok = ReadId(ref r, out ev.StopId);
                    break;
                case KRoute:
                    ok = ReadId(ref r, out ev.RouteId);
                    break;
                case KTtarr:
                    ok = ReadOptionalTime(ref r, out ev.ScheduledArrival);
                    break;
                case KTtdep:
                    ok = ReadOptionalTime(ref r, out ev.ScheduledDeparture);
                    break;
                case KOper:
                    ok = ReadInt(ref r, out fields.Operator);
                    break;
                case KVeh:
                    ok = ReadInt(ref r, out fields.Vehicle);
                    break;
                case KDesi:
                case KLine:
                default:
                    if (r.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray && !r.TrySkip())
                    {
                        return RejectReason.TruncatedLine;
                    }

                    break;
            }

            if (!ok)
            {
                return RejectReason.BadFieldValue;
            }
        }

        // The outer object must close right after the one event, with nothing but whitespace after it.
        if (!r.Read())
        {
            return RejectReason.TruncatedLine;
        }

        if (r.TokenType != JsonTokenType.EndObject)
        {
            return RejectReason.BadJson;
        }

        foreach (var b in payload[(int)r.BytesConsumed..])
        {
            if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
            {
                return RejectReason.BadJson;
            }
        }

        if (!seenTime)
        {
            if (tsi == long.MinValue)
            {
                return RejectReason.MissingTimestamp;
            }

            if (tsi < 0 || tsi > 253402300799)
            {
                return RejectReason.BadFieldValue;
            }

            ev.EventTime = DateTime.UnixEpoch.AddSeconds(tsi);
        }

        var latNull = double.IsNaN(ev.Latitude);
        var longNull = double.IsNaN(ev.Longitude);
        if ((ev.Type == EventType.Vp && !seenLat && !seenLong) || latNull != longNull)
        {
            return RejectReason.MissingCoordinates;
        }

        if (!latNull && (!double.IsFinite(ev.Latitude) || !double.IsFinite(ev.Longitude)
            || Math.Abs(ev.Latitude) > 90 || Math.Abs(ev.Longitude) > 180))
        {
            return RejectReason.CoordinatesOutOfRange;
        }

        return RejectReason.None;
    }

    private bool Fail(RejectReason reason, ReadOnlySpan<byte> topic, string detail, out RejectReason outReason)
    {
        outReason = reason;
        Rejections.Increment(reason);
        if (_logger.IsEnabled(LogLevel.Warning) && _logLimiter.TryAcquire(out var suppressed))
        {
            var shown = topic.Length > 200 ? topic[..200] : topic;
            Log.MessageRejected(_logger, reason, detail, Encoding.UTF8.GetString(shown), suppressed);
        }

        return false;
    }

    private static string Describe(RejectReason reason) => reason switch
    {
        RejectReason.TruncatedLine => "payload ends before the JSON does",
        RejectReason.Oversized => "payload larger than MaxPayloadBytes",
        RejectReason.BadJson => "payload is not JSON shaped {\"TYPE\":{...}}",
        RejectReason.UnknownEventType => "payload event type is not an HFP vehicle event",
        RejectReason.MissingTimestamp => "no tst (or tsi)",
        RejectReason.MissingCoordinates => "position message without lat/long, or only one of them",
        RejectReason.CoordinatesOutOfRange => "lat/long out of range",
        RejectReason.BadFieldValue => "a field has a value of the wrong type or shape",
        _ => reason.ToString(),
    };

    private static ulong NameKey(ReadOnlySpan<byte> name, bool escaped)
    {
        if (escaped || name.Length is 0 or > 7)
        {
            return 0;
        }

        ulong key = (ulong)name.Length << 56;
        for (var i = 0; i < name.Length; i++)
        {
            key |= (ulong)name[i] << (8 * i);
        }

        return key;
    }

    // Readers below: null means absent (NaN / int.MinValue / null); numbers may also arrive as strings (CSV,
    // hand-made feeds); anything else is a bad value.
    private static bool ReadDouble(ref Utf8JsonReader r, out double value)
    {
        value = double.NaN;
        return r.TokenType switch
        {
            JsonTokenType.Number => r.TryGetDouble(out value),
            JsonTokenType.Null => true,
            JsonTokenType.String => !r.ValueIsEscaped && ParseDouble(r.ValueSpan, out value),
            _ => false,
        };
    }

    private static bool ParseDouble(ReadOnlySpan<byte> s, out double value)
    {
        value = double.NaN;
        return s.IsEmpty || (Utf8Parser.TryParse(s, out value, out var used) && used == s.Length);
    }

    private static bool ReadFloat(ref Utf8JsonReader r, out float value)
    {
        var ok = ReadDouble(ref r, out var d);
        value = (float)d;
        return ok;
    }

    private static bool ReadInt(ref Utf8JsonReader r, out int value)
    {
        value = int.MinValue;
        switch (r.TokenType)
        {
            case JsonTokenType.Null:
                return true;
            case JsonTokenType.Number:
                if (r.TryGetInt32(out value))
                {
                    return value != int.MinValue;
                }

                return r.TryGetDouble(out var d) && IntegralDouble(d, out value);
            case JsonTokenType.String:
                var s = r.ValueSpan;
                if (r.ValueIsEscaped)
                {
                    return false;
                }

                if (s.IsEmpty)
                {
                    return true;
                }

                if (Utf8Parser.TryParse(s, out value, out var used) && used == s.Length)
                {
                    return value != int.MinValue;
                }

                return ParseDouble(s, out var d2) && IntegralDouble(d2, out value);
            default:
                return false;
        }
    }

    private static bool IntegralDouble(double d, out int value)
    {
        value = int.MinValue;
        if (d != Math.Floor(d) || d <= int.MinValue || d > int.MaxValue)
        {
            return false;
        }

        value = (int)d;
        return true;
    }

    private static bool ReadTime(ref Utf8JsonReader r, out DateTime value)
    {
        value = default;
        return r.TokenType == JsonTokenType.String && !r.ValueIsEscaped && Iso8601.TryParseUtc(r.ValueSpan, out value);
    }

    private static bool ReadOptionalTime(ref Utf8JsonReader r, out DateTime? value)
    {
        value = null;
        if (r.TokenType == JsonTokenType.Null || (r.TokenType == JsonTokenType.String && r.ValueSpan.IsEmpty))
        {
            return true;
        }

        if (!ReadTime(ref r, out var t))
        {
            return false;
        }

        value = t;
        return true;
    }

    private static bool ReadDate(ref Utf8JsonReader r, out DateOnly? value)
    {
        value = null;
        if (r.TokenType == JsonTokenType.Null || (r.TokenType == JsonTokenType.String && r.ValueSpan.IsEmpty))
        {
            return true;
        }

        if (r.TokenType != JsonTokenType.String || r.ValueIsEscaped || !Iso8601.TryParseDate(r.ValueSpan, out var d))
        {
            return false;
        }

        value = d;
        return true;
    }

    private static bool ReadTimeOfDay(ref Utf8JsonReader r, out int seconds)
    {
        seconds = -1;
        if (r.TokenType == JsonTokenType.Null || (r.TokenType == JsonTokenType.String && r.ValueSpan.IsEmpty))
        {
            return true;
        }

        return r.TokenType == JsonTokenType.String && !r.ValueIsEscaped && Iso8601.TryParseTimeOfDay(r.ValueSpan, out seconds);
    }

    private static bool ReadLocation(ref Utf8JsonReader r, out LocationSource value)
    {
        value = LocationSource.Unknown;
        if (r.TokenType == JsonTokenType.Null)
        {
            return true;
        }

        if (r.TokenType != JsonTokenType.String)
        {
            return false;
        }

        var s = r.ValueSpan;
        value = s.Length switch
        {
            3 when s.SequenceEqual("GPS"u8) => LocationSource.Gps,
            3 when s.SequenceEqual("ODO"u8) => LocationSource.Odometer,
            3 when s.SequenceEqual("MAN"u8) => LocationSource.Manual,
            3 when s.SequenceEqual("N/A"u8) => LocationSource.NotAvailable,
            2 when s.SequenceEqual("DR"u8) => LocationSource.DeadReckoning,
            _ => LocationSource.Unknown,
        };
        return true;
    }

    private bool ReadId(ref Utf8JsonReader r, out string? value)
    {
        value = null;
        switch (r.TokenType)
        {
            case JsonTokenType.Null:
                return true;
            case JsonTokenType.Number:
                value = _ids.Intern(r.ValueSpan);
                return true;
            case JsonTokenType.String:
                if (!r.ValueIsEscaped)
                {
                    value = r.ValueSpan.IsEmpty ? null : _ids.Intern(r.ValueSpan);
                    return true;
                }

                return ReadEscapedId(ref r, out value);
            default:
                return false;
        }
    }

    [SuppressMessage("Performance", "CA1822", Justification = "Uses the interner.")]
    private bool ReadEscapedId(ref Utf8JsonReader r, out string? value)
    {
        // Rare: an id written with JSON escapes. Unescape into a stack buffer, then intern the bytes.
        value = null;
        if (r.ValueSpan.Length > 256)
        {
            return false;
        }

        Span<byte> buffer = stackalloc byte[256];
        var n = r.CopyString(buffer);
        value = n == 0 ? null : _ids.Intern(buffer[..n]);
        return true;
    }
}
