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

    /// <summary>
    /// Reads flat payloads with the hand-written scanner first (default true); false parses every payload with
    /// <see cref="Utf8JsonReader"/>, which gives the same events and reasons, only slower (for comparison).
    /// </summary>
    public bool FastPath { get; set; } = true;
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
    private long _fastPathTaken;

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

    /// <summary>Payloads read by the hand-written scanner (the rest went through <see cref="Utf8JsonReader"/>).</summary>
    public long FastPathTaken => Volatile.Read(ref _fastPathTaken);

    /// <summary>The id interner, for callers that intern ids of their own (e.g. a CSV reader).</summary>
    public Utf8Interner Ids => _ids;

    /// <summary>
    /// Parses one message. On success returns true with <paramref name="result"/> filled; otherwise returns false
    /// with the <paramref name="reason"/>, which has already been counted and (rate-limited) logged.
    /// </summary>
    public bool TryParse(ReadOnlySpan<byte> topic, ReadOnlySpan<byte> payload, DateTime receiveTime, out VehicleEvent result, out RejectReason reason)
    {
        // The event is built in place in the caller's variable: VehicleEvent is a large struct, and every copy of it
        // (with its references, through write barriers) showed up in the profile.
        if (payload.Length > _options.MaxPayloadBytes)
        {
            result = default;
            return Fail(RejectReason.Oversized, topic, "payload larger than MaxPayloadBytes", out reason);
        }

        if (!HfpTopic.TryParse(topic, out var t))
        {
            result = default;
            return Fail(RejectReason.BadTopic, topic, "not an HFP v1/v2 topic with operator and vehicle", out reason);
        }

        result = VehicleEvent.Empty;
        ref var ev = ref result;
        var fields = default(PayloadFields);
        reason = ParsePayload(payload, ref ev, ref fields);
        if (reason != RejectReason.None)
        {
            result = default;
            return Fail(reason, topic, Describe(reason), out reason);
        }

        if (t.EventType != EventType.Unknown && t.EventType != ev.Type)
        {
            result = default;
            return Fail(RejectReason.EventTypeMismatch, topic, "topic and payload event types differ", out reason);
        }

        // Set after the payload: the payload parser starts over from Empty when its scanner gives up.
        ev.Source = EventSource.Hfp;
        ev.ReceiveTime = receiveTime;
        ev.Journey = t.Journey;
        ev.Mode = t.Mode;
        ev.Upcoming = t.Upcoming;

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
        return true;
    }

    /// <summary>
    /// Parses a payload that has no topic (CSV exports, hand-made feeds): the vehicle id is built from the payload's
    /// <c>oper</c> and <c>veh</c>, zero padded as in the topic (<c>0040/00601</c>); journey and mode are unknown.
    /// Rejections are counted and logged as in <see cref="TryParse"/>.
    /// </summary>
    public bool TryParsePayload(ReadOnlySpan<byte> payload, DateTime receiveTime, out VehicleEvent result, out RejectReason reason)
    {
        result = VehicleEvent.Empty;
        ref var ev = ref result;
        var fields = default(PayloadFields);
        reason = ParsePayload(payload, ref ev, ref fields);
        if (reason != RejectReason.None)
        {
            result = default;
            return Fail(reason, "(no topic)"u8, Describe(reason), out reason);
        }

        if (fields.Operator is < 0 or > 9999 || fields.Vehicle is < 0 or > 99999)
        {
            result = default;
            return Fail(RejectReason.BadFieldValue, "(no topic)"u8, "oper/veh missing or out of range", out reason);
        }

        ev.Source = EventSource.Hfp;
        ev.ReceiveTime = receiveTime;

        Span<byte> id = stackalloc byte[10];
        WriteDigits(id[..4], fields.Operator);
        id[4] = (byte)'/';
        WriteDigits(id[5..], fields.Vehicle);
        ev.VehicleId = _ids.Intern(id);
        Finish(ref ev);
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

    /// <summary>
    /// What a payload says beyond the event itself: <c>oper</c>/<c>veh</c>, which only a topic-less source (CSV) needs,
    /// and which of the time and coordinate fields were present.
    /// </summary>
    internal struct PayloadFields
    {
        public int Operator;
        public int Vehicle;
        public bool SeenLat;
        public bool SeenLong;
        public bool SeenTime;
        public long Tsi;
    }

    /// <summary>
    /// Parses <c>{"TYPE":{...}}</c> into <paramref name="ev"/>, which must be <see cref="VehicleEvent.Empty"/> (the
    /// payload's fields are set; the rest is left alone); returns the rejection reason or None.
    /// </summary>
    /// <remarks>
    /// A hand-written scanner reads the flat, unescaped ASCII objects that every HFP feed sends; anything it does not
    /// know (escapes, nested values, true/false, non-ASCII strings, malformed or cut-off JSON) makes it give up, and the
    /// message is parsed again from the start by <see cref="Utf8JsonReader"/>, which names the exact rejection. Both
    /// paths hand each field to the same <see cref="ApplyField"/>, so they agree on every accepted message.
    /// </remarks>
    internal RejectReason ParsePayload(ReadOnlySpan<byte> payload, ref VehicleEvent ev, ref PayloadFields fields)
    {
        if (payload.Length > _options.MaxPayloadBytes)
        {
            return RejectReason.Oversized;
        }

        fields = new PayloadFields { Operator = -1, Vehicle = -1, Tsi = long.MinValue };
        var fast = _options.FastPath ? TryParseFlat(payload, ref ev, ref fields) : FastPathGaveUp;
        if (fast != FastPathGaveUp)
        {
            _fastPathTaken++;
            return fast;
        }

        // Rare (escapes, nesting, malformed input): start over from Empty, without having copied it up front.
        if (_options.FastPath)
        {
            ev = VehicleEvent.Empty;
        }

        fields = new PayloadFields { Operator = -1, Vehicle = -1, Tsi = long.MinValue };
        try
        {
            return ParseJson(payload, ref ev, ref fields);
        }
        catch (JsonException)
        {
            return RejectReason.BadJson;
        }
    }

    // Not a real reason: the fast path's "parse this one with Utf8JsonReader".
    private const RejectReason FastPathGaveUp = (RejectReason)255;

    private RejectReason TryParseFlat(ReadOnlySpan<byte> p, ref VehicleEvent ev, ref PayloadFields fields)
    {
        var i = SkipWhitespace(p, 0);
        if (i >= p.Length || p[i] != (byte)'{')
        {
            return FastPathGaveUp;
        }

        i = SkipWhitespace(p, i + 1);
        if (!TryScanName(p, ref i, out var typeKey) || i >= p.Length || p[i] != (byte)'{')
        {
            return FastPathGaveUp;
        }

        ev.Type = HfpEventTypes.FromPayloadKey(typeKey);
        if (ev.Type == EventType.Unknown)
        {
            return FastPathGaveUp;
        }

        i = SkipWhitespace(p, i + 1);
        if (i < p.Length && p[i] == (byte)'}')
        {
            i++;
        }
        else
        {
            while (true)
            {
                if (!TryScanNameKey(p, ref i, out var key) || !TryScanValue(p, ref i, out var type, out var value))
                {
                    return FastPathGaveUp;
                }

                if (!ApplyField(key, type, value, ref ev, ref fields))
                {
                    return RejectReason.BadFieldValue;
                }

                i = SkipWhitespace(p, i);
                if (i >= p.Length)
                {
                    return FastPathGaveUp;
                }

                if (p[i] == (byte)'}')
                {
                    i++;
                    break;
                }

                if (p[i] != (byte)',')
                {
                    return FastPathGaveUp;
                }

                i = SkipWhitespace(p, i + 1);
            }
        }

        i = SkipWhitespace(p, i);
        if (i >= p.Length || p[i] != (byte)'}' || SkipWhitespace(p, i + 1) != p.Length)
        {
            return FastPathGaveUp;
        }

        return Validate(ref ev, ref fields);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static int SkipWhitespace(ReadOnlySpan<byte> p, int i)
    {
        // Compact JSON (every HFP feed) has none: one compare in the common case.
        if ((uint)i < (uint)p.Length && p[i] > (byte)' ')
        {
            return i;
        }

        while (i < p.Length && p[i] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')
        {
            i++;
        }

        return i;
    }

    // A property name and its colon ("name" :); i ends at the value.
    private static bool TryScanName(ReadOnlySpan<byte> p, ref int i, out ReadOnlySpan<byte> name)
    {
        if (!TryScanString(p, ref i, out name))
        {
            return false;
        }

        i = SkipWhitespace(p, i);
        if (i >= p.Length || p[i] != (byte)':')
        {
            return false;
        }

        i = SkipWhitespace(p, i + 1);
        return true;
    }

    // A field name and its colon, as TryScanName, read straight into its NameKey (the same key NameKey computes).
    private static bool TryScanNameKey(ReadOnlySpan<byte> p, ref int i, out ulong key)
    {
        key = 0;
        if (i >= p.Length || p[i] != (byte)'"')
        {
            return false;
        }

        var start = i + 1;
        var j = start;
        ulong k = 0;
        for (; j < p.Length; j++)
        {
            var c = p[j];
            if (c == (byte)'"')
            {
                break;
            }

            if (c is < 0x20 or > 0x7E or (byte)'\\')
            {
                return false;
            }

            var n = j - start;
            if (n < 7)
            {
                k |= (ulong)c << (8 * n);
            }
        }

        if (j >= p.Length)
        {
            return false;
        }

        var length = j - start;
        key = length is 0 or > 7 ? 0 : k | ((ulong)length << 56);
        i = SkipWhitespace(p, j + 1);
        if (i >= p.Length || p[i] != (byte)':')
        {
            return false;
        }

        i = SkipWhitespace(p, i + 1);
        return true;
    }

    // A string of printable ASCII without escapes, starting at p[i] == '"'; i ends after the closing quote. HFP strings
    // are a few bytes long, so a plain loop beats a vectorized search here.
    private static bool TryScanString(ReadOnlySpan<byte> p, ref int i, out ReadOnlySpan<byte> value)
    {
        value = default;
        if (i >= p.Length || p[i] != (byte)'"')
        {
            return false;
        }

        for (var j = i + 1; j < p.Length; j++)
        {
            var c = p[j];
            if (c == (byte)'"')
            {
                value = p[(i + 1)..j];
                i = j + 1;
                return true;
            }

            if (c is < 0x20 or > 0x7E or (byte)'\\')
            {
                return false;
            }
        }

        return false;
    }

    // A string, null or a number that follows JSON's grammar; anything else (objects, arrays, true/false) gives up.
    private static bool TryScanValue(ReadOnlySpan<byte> p, ref int i, out JsonTokenType type, out ReadOnlySpan<byte> value)
    {
        type = JsonTokenType.None;
        value = default;
        if (i >= p.Length)
        {
            return false;
        }

        var c = p[i];
        if (c == (byte)'"')
        {
            type = JsonTokenType.String;
            return TryScanString(p, ref i, out value);
        }

        if (c == (byte)'n')
        {
            if (!p[i..].StartsWith("null"u8))
            {
                return false;
            }

            type = JsonTokenType.Null;
            i += 4;
            return true;
        }

        var start = i;
        if (c == (byte)'-')
        {
            i++;
        }

        if (i >= p.Length || !char.IsAsciiDigit((char)p[i]))
        {
            return false;
        }

        if (p[i] == (byte)'0')
        {
            i++;
        }
        else
        {
            i = SkipDigits(p, i);
        }

        if (i < p.Length && p[i] == (byte)'.')
        {
            var afterDot = i + 1;
            i = SkipDigits(p, afterDot);
            if (i == afterDot)
            {
                return false;
            }
        }

        if (i < p.Length && p[i] is (byte)'e' or (byte)'E')
        {
            i++;
            if (i < p.Length && p[i] is (byte)'+' or (byte)'-')
            {
                i++;
            }

            var digits = i;
            i = SkipDigits(p, digits);
            if (i == digits)
            {
                return false;
            }
        }

        // A number must end at a delimiter, as in "1.5}" or "2 ,"; "1.5x" is not JSON.
        if (i < p.Length && p[i] is not ((byte)',' or (byte)'}' or (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
        {
            return false;
        }

        type = JsonTokenType.Number;
        value = p[start..i];
        return true;

        static int SkipDigits(ReadOnlySpan<byte> p, int i)
        {
            while (i < p.Length && char.IsAsciiDigit((char)p[i]))
            {
                i++;
            }

            return i;
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

            bool ok;
            if (r.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
            {
                // No HFP field is an object or an array: one under a known name is a bad value, others are skipped.
                if (!r.TrySkip())
                {
                    return RejectReason.TruncatedLine;
                }

                ok = !IsKnownField(key);
            }
            else if (r.TokenType == JsonTokenType.String && r.ValueIsEscaped)
            {
                ok = ApplyEscapedField(key, ref r, ref ev);
            }
            else
            {
                ok = ApplyField(key, r.TokenType, r.ValueSpan, ref ev, ref fields);
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

        return Validate(ref ev, ref fields);
    }

    // Escaped strings: only ids may carry escapes (unescaped, then interned); tsi as a string and loc are ignored as
    // unescaped ones are; an escaped number, time or date is not something any HFP feed sends, so it is a bad value.
    private bool ApplyEscapedField(ulong key, ref Utf8JsonReader r, ref VehicleEvent ev) => key switch
    {
        KStop => ReadEscapedId(ref r, out ev.StopId),
        KRoute => ReadEscapedId(ref r, out ev.RouteId),
        KTsi or KLoc => true,
        _ => !IsKnownField(key),
    };

    /// <summary>Fields the parser reads (an object or array there is a bad value); the rest are ignored.</summary>
    private static bool IsKnownField(ulong key) => key is KTst or KTsi or KLat or KLong or KSpd or KHdg or KAcc or KOdo
        or KDl or KDrst or KDir or KOday or KStart or KJrn or KOccu or KLoc or KStop or KRoute or KTtarr or KTtdep
        or KOper or KVeh;

    /// <summary>Applies one field of the payload (a string, number or null token with its raw bytes).</summary>
    private bool ApplyField(ulong key, JsonTokenType type, ReadOnlySpan<byte> value, ref VehicleEvent ev, ref PayloadFields fields)
    {
        switch (key)
        {
            case KTst:
                fields.SeenTime = type != JsonTokenType.Null;
                return !fields.SeenTime || ReadTime(type, value, out ev.EventTime);
            case KTsi:
                if (type == JsonTokenType.Number && TryParseDigits(value, out var s))
                {
                    fields.Tsi = s;
                }
                else if (type == JsonTokenType.Number && Utf8Parser.TryParse(value, out s, out var used) && used == value.Length)
                {
                    fields.Tsi = s;
                }

                return true;
            case KLat:
                fields.SeenLat = true;
                return ReadDouble(type, value, out ev.Latitude);
            case KLong:
                fields.SeenLong = true;
                return ReadDouble(type, value, out ev.Longitude);
            case KSpd:
                return ReadFloat(type, value, out ev.Speed);
            case KHdg:
                return ReadFloat(type, value, out ev.Heading);
            case KAcc:
                return ReadFloat(type, value, out ev.Acceleration);
            case KOdo:
                return ReadDouble(type, value, out ev.Odometer);
            case KDl:
            {
                var ok = ReadInt(type, value, out var dl);
                // HFP dl is negative when late; ours is positive when late (as GTFS-RT).
                ev.DelaySeconds = dl == int.MinValue ? null : -dl;
                return ok;
            }

            case KDrst:
            {
                var ok = ReadInt(type, value, out var drst) && drst is int.MinValue or 0 or 1;
                ev.Doors = drst == int.MinValue ? (sbyte)-1 : (sbyte)drst;
                return ok;
            }

            case KDir:
            {
                var ok = ReadInt(type, value, out var dir) && dir is int.MinValue or 1 or 2;
                ev.DirectionId = dir == int.MinValue ? (sbyte)-1 : (sbyte)(dir - 1);
                return ok;
            }

            case KOday:
                return ReadDate(type, value, out ev.OperatingDay);
            case KStart:
                return ReadTimeOfDay(type, value, out ev.StartTimeSeconds);
            case KJrn:
            {
                var ok = ReadInt(type, value, out var jrn);
                ev.JourneyNumber = jrn == int.MinValue ? -1 : jrn;
                return ok;
            }

            case KOccu:
            {
                var ok = ReadInt(type, value, out var occu) && occu is int.MinValue or (>= 0 and <= 100);
                ev.Occupancy = occu == int.MinValue ? -1 : occu;
                return ok;
            }

            case KLoc:
                return ReadLocation(type, value, out ev.Location);
            case KStop:
                return ReadId(type, value, out ev.StopId);
            case KRoute:
                return ReadId(type, value, out ev.RouteId);
            case KTtarr:
                return ReadOptionalTime(type, value, out ev.ScheduledArrival);
            case KTtdep:
                return ReadOptionalTime(type, value, out ev.ScheduledDeparture);
            case KOper:
                return ReadInt(type, value, out fields.Operator);
            case KVeh:
                return ReadInt(type, value, out fields.Vehicle);
            default:
                // desi, line and any field HFP may add later.
                return true;
        }
    }

    /// <summary>The checks that need the whole payload: a time, coordinates in pairs and in range.</summary>
    private static RejectReason Validate(ref VehicleEvent ev, ref PayloadFields fields)
    {
        if (!fields.SeenTime)
        {
            if (fields.Tsi == long.MinValue)
            {
                return RejectReason.MissingTimestamp;
            }

            if (fields.Tsi < 0 || fields.Tsi > 253402300799)
            {
                return RejectReason.BadFieldValue;
            }

            ev.EventTime = DateTime.UnixEpoch.AddSeconds(fields.Tsi);
        }

        var latNull = double.IsNaN(ev.Latitude);
        var longNull = double.IsNaN(ev.Longitude);
        if ((ev.Type == EventType.Vp && !fields.SeenLat && !fields.SeenLong) || latNull != longNull)
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

    // Readers below take a token type and its raw bytes: null means absent (NaN / int.MinValue / null); numbers may
    // also arrive as strings (CSV, hand-made feeds); anything else is a bad value.
    private static bool ReadDouble(JsonTokenType type, ReadOnlySpan<byte> s, out double value)
    {
        value = double.NaN;
        return type switch
        {
            JsonTokenType.Number => ParseDouble(s, out value),
            JsonTokenType.Null => true,
            JsonTokenType.String => s.IsEmpty || ParseDouble(s, out value),
            _ => false,
        };
    }

    private static bool ParseDouble(ReadOnlySpan<byte> s, out double value) => Utf8Decimal.TryParse(s, out value);

    private static bool ReadFloat(JsonTokenType type, ReadOnlySpan<byte> s, out float value)
    {
        var ok = ReadDouble(type, s, out var d);
        value = (float)d;
        return ok;
    }

    private static bool ReadInt(JsonTokenType type, ReadOnlySpan<byte> s, out int value)
    {
        value = int.MinValue;
        switch (type)
        {
            case JsonTokenType.Null:
                return true;
            case JsonTokenType.String when s.IsEmpty:
                return true;
            case JsonTokenType.Number:
            case JsonTokenType.String:
                // Plain digits (almost every HFP integer) without Utf8Parser's generality; the rest as before.
                var negative = !s.IsEmpty && s[0] == (byte)'-';
                if (s.Length is > 0 and <= 10 && TryParseDigits(negative ? s[1..] : s, out var plain) && plain <= int.MaxValue)
                {
                    value = negative ? -(int)plain : (int)plain;
                    return true;
                }

                if (Utf8Parser.TryParse(s, out value, out var used) && used == s.Length)
                {
                    return value != int.MinValue;
                }

                return ParseDouble(s, out var d) && IntegralDouble(d, out value);
            default:
                return false;
        }
    }

    /// <summary>One to eighteen ASCII digits and nothing else (no sign, no leading '+').</summary>
    private static bool TryParseDigits(ReadOnlySpan<byte> s, out long value)
    {
        value = 0;
        if (s.IsEmpty || s.Length > 18)
        {
            return false;
        }

        foreach (var c in s)
        {
            var d = (uint)(c - '0');
            if (d > 9)
            {
                return false;
            }

            value = (value * 10) + d;
        }

        return true;
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

    private static bool ReadTime(JsonTokenType type, ReadOnlySpan<byte> s, out DateTime value)
    {
        value = default;
        return type == JsonTokenType.String && Iso8601.TryParseUtc(s, out value);
    }

    private static bool ReadOptionalTime(JsonTokenType type, ReadOnlySpan<byte> s, out DateTime? value)
    {
        value = null;
        if (type == JsonTokenType.Null || (type == JsonTokenType.String && s.IsEmpty))
        {
            return true;
        }

        if (!ReadTime(type, s, out var t))
        {
            return false;
        }

        value = t;
        return true;
    }

    private static bool ReadDate(JsonTokenType type, ReadOnlySpan<byte> s, out DateOnly? value)
    {
        value = null;
        if (type == JsonTokenType.Null || (type == JsonTokenType.String && s.IsEmpty))
        {
            return true;
        }

        if (type != JsonTokenType.String || !Iso8601.TryParseDate(s, out var d))
        {
            return false;
        }

        value = d;
        return true;
    }

    private static bool ReadTimeOfDay(JsonTokenType type, ReadOnlySpan<byte> s, out int seconds)
    {
        seconds = -1;
        if (type == JsonTokenType.Null || (type == JsonTokenType.String && s.IsEmpty))
        {
            return true;
        }

        return type == JsonTokenType.String && Iso8601.TryParseTimeOfDay(s, out seconds);
    }

    private static bool ReadLocation(JsonTokenType type, ReadOnlySpan<byte> s, out LocationSource value)
    {
        value = LocationSource.Unknown;
        if (type == JsonTokenType.Null)
        {
            return true;
        }

        if (type != JsonTokenType.String)
        {
            return false;
        }

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

    private bool ReadId(JsonTokenType type, ReadOnlySpan<byte> s, out string? value)
    {
        value = null;
        switch (type)
        {
            case JsonTokenType.Null:
                return true;
            case JsonTokenType.Number:
                value = _ids.Intern(s);
                return true;
            case JsonTokenType.String:
                value = s.IsEmpty ? null : _ids.Intern(s);
                return true;
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
