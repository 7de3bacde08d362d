using System.Text;
using Google.Protobuf;
using TransitRealtime;

namespace Fleet.Gtfs.Realtime;

/// <summary>Bytes that are not a GTFS-Realtime FeedMessage (corrupt protobuf, bad JSON, no header).</summary>
public sealed class GtfsRtFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    public GtfsRtFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with its cause.</summary>
    public GtfsRtFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception with a default message.</summary>
    public GtfsRtFormatException()
        : base("not a GTFS-Realtime FeedMessage")
    {
    }
}

/// <summary>
/// Decodes GTFS-Realtime FeedMessages from protobuf bytes or from protobuf-JSON (snake_case field names as the
/// Sound Transit and OneBusAway captures use, or lowerCamelCase; enum values by name or number).
/// </summary>
/// <remarks>
/// <para>Every failure is a <see cref="GtfsRtFormatException"/> with a readable reason; nothing else escapes.
/// Because protobuf happily parses many random byte strings as "unknown fields", a message without a
/// <c>header.gtfs_realtime_version</c> (required by the reference) is rejected too. Unknown fields and
/// extensions (for example NYCT's field 1001) are skipped.</para>
/// <para>Stateless and thread-safe.</para>
/// </remarks>
public static class GtfsRtDecoder
{
    private static readonly MessageParser<FeedMessage> s_parser = FeedMessage.Parser.WithDiscardUnknownFields(true);
    private static readonly JsonParser s_json = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true));

    /// <summary>Decodes a protobuf FeedMessage.</summary>
    /// <exception cref="GtfsRtFormatException">The bytes are not a FeedMessage.</exception>
    public static FeedMessage Decode(ReadOnlySpan<byte> bytes)
    {
        FeedMessage feed;
        try
        {
            feed = s_parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new GtfsRtFormatException($"corrupt GTFS-Realtime protobuf ({bytes.Length} bytes): {ex.Message}", ex);
        }

        return Check(feed, bytes.Length, "protobuf");
    }

    /// <summary>Decodes a protobuf-JSON FeedMessage.</summary>
    /// <exception cref="GtfsRtFormatException">The text is not JSON of a FeedMessage.</exception>
    public static FeedMessage DecodeJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        FeedMessage feed;
        try
        {
            feed = s_json.Parse<FeedMessage>(json);
        }
        catch (Exception ex) when (ex is InvalidProtocolBufferException or InvalidJsonException or FormatException or ArgumentException)
        {
            // An agency's quirks (a wrapper, a lone stop_time_update, float seconds): undone, then parsed once more.
            if (GtfsRtJsonQuirks.Normalize(json) is { } normalized && TryParse(normalized) is { } fixedFeed)
            {
                return Check(fixedFeed, json.Length, "JSON");
            }

            throw new GtfsRtFormatException($"invalid GTFS-Realtime JSON ({json.Length} chars): {ex.Message}", ex);
        }

        if (string.IsNullOrEmpty(feed.Header?.GtfsRealtimeVersion) && GtfsRtJsonQuirks.Normalize(json) is { } unwrapped && TryParse(unwrapped) is { Header.GtfsRealtimeVersion.Length: > 0 } inner)
        {
            // Parsed, but empty: the FeedMessage was inside a wrapper object (unknown fields are ignored).
            return Check(inner, json.Length, "JSON");
        }

        return Check(feed, json.Length, "JSON");
    }

    private static FeedMessage? TryParse(string json)
    {
        try
        {
            return s_json.Parse<FeedMessage>(json);
        }
        catch (Exception ex) when (ex is InvalidProtocolBufferException or InvalidJsonException or FormatException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>Decodes protobuf or JSON, whichever the bytes are (JSON starts with <c>{</c> after blanks).</summary>
    public static FeedMessage DecodeAny(ReadOnlySpan<byte> bytes) =>
        LooksLikeJson(bytes) ? DecodeJson(Encoding.UTF8.GetString(bytes)) : Decode(bytes);

    /// <summary>Reads and decodes a .pb or .json file.</summary>
    /// <exception cref="GtfsRtFormatException">The file is not a FeedMessage; the message names the file.</exception>
    public static FeedMessage DecodeFile(string path)
    {
        var bytes = File.ReadAllBytes(path);
        try
        {
            return DecodeAny(bytes);
        }
        catch (GtfsRtFormatException ex)
        {
            throw new GtfsRtFormatException($"{path}: {ex.Message}", ex);
        }
    }

    /// <summary>True when the first non-blank byte is <c>{</c> (after an optional UTF-8 BOM).</summary>
    public static bool LooksLikeJson(ReadOnlySpan<byte> bytes)
    {
        if (bytes.StartsWith(Encoding.UTF8.Preamble))
        {
            bytes = bytes[3..];
        }

        foreach (var b in bytes)
        {
            if (b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')
            {
                continue;
            }

            return b == (byte)'{';
        }

        return false;
    }

    private static FeedMessage Check(FeedMessage feed, int size, string form)
    {
        if (feed.Header is null || !feed.Header.HasGtfsRealtimeVersion)
        {
            throw new GtfsRtFormatException($"not a GTFS-Realtime FeedMessage ({form}, {size} bytes): no header.gtfs_realtime_version");
        }

        return feed;
    }
}
