namespace Fleet.Ingest.Recording;

/// <summary>What a recording line holds.</summary>
public enum RecordKind : byte
{
    /// <summary>An MQTT message: topic and (JSON) payload, e.g. HFP.</summary>
    Message,

    /// <summary>A GTFS-Realtime snapshot: topic <c>gtfs-rt/&lt;feed&gt;</c>, payload the decoded protobuf bytes.</summary>
    GtfsRt,

    /// <summary>A line that could not be read; <see cref="RecordingLine.Rejection"/> says why.</summary>
    Malformed,
}

/// <summary>
/// One line of a recording, as spans into the reader's buffer: valid only until the next read.
/// </summary>
/// <remarks>Format: <c>&lt;receive time ISO-8601 UTC&gt; &lt;topic&gt; &lt;payload&gt;</c>, see <see cref="RecordingReader"/>.</remarks>
public readonly ref struct RecordingLine
{
    /// <summary>Creates a line.</summary>
    public RecordingLine(RecordKind kind, DateTime receiveTime, ReadOnlySpan<byte> topic, ReadOnlySpan<byte> payload, RejectReason rejection, long lineNumber)
    {
        Kind = kind;
        ReceiveTime = receiveTime;
        Topic = topic;
        Payload = payload;
        Rejection = rejection;
        LineNumber = lineNumber;
    }

    /// <summary>What the line holds.</summary>
    public RecordKind Kind { get; }

    /// <summary>When the message was received, UTC (default for a line without a readable time).</summary>
    public DateTime ReceiveTime { get; }

    /// <summary>The MQTT topic (UTF-8); empty for malformed lines.</summary>
    public ReadOnlySpan<byte> Topic { get; }

    /// <summary>The payload: JSON bytes for messages, decoded protobuf for GTFS-RT; empty for malformed lines.</summary>
    public ReadOnlySpan<byte> Payload { get; }

    /// <summary>Why a <see cref="RecordKind.Malformed"/> line was rejected; <see cref="RejectReason.None"/> otherwise.</summary>
    public RejectReason Rejection { get; }

    /// <summary>1-based line number in the file.</summary>
    public long LineNumber { get; }
}

/// <summary>A recording line copied out of the reader's buffer, so it can travel through a channel.</summary>
/// <remarks>Immutable.</remarks>
public sealed class RecordedMessage
{
    private readonly byte[] _data;
    private readonly int _topicLength;

    /// <summary>Copies <paramref name="line"/>.</summary>
    /// <param name="line">The line to copy.</param>
    /// <param name="source">Where it came from (a file name).</param>
    /// <param name="timeShift">Added to the receive time (replay loops move later rounds forward in time).</param>
    /// <param name="loop">The replay round, 0 for the first.</param>
    public RecordedMessage(in RecordingLine line, string source, TimeSpan timeShift = default, int loop = 0)
    {
        ArgumentNullException.ThrowIfNull(source);
        Kind = line.Kind;
        ReceiveTime = line.ReceiveTime == default ? default : line.ReceiveTime + timeShift;
        Rejection = line.Rejection;
        Source = source;
        LineNumber = line.LineNumber;
        Loop = loop;
        _topicLength = line.Topic.Length;
        _data = new byte[line.Topic.Length + line.Payload.Length];
        line.Topic.CopyTo(_data);
        line.Payload.CopyTo(_data.AsSpan(_topicLength));
    }

    /// <summary>What the line holds.</summary>
    public RecordKind Kind { get; }

    /// <summary>When the message was received, UTC, shifted by the replay loop offset.</summary>
    public DateTime ReceiveTime { get; }

    /// <summary>The topic bytes.</summary>
    public ReadOnlyMemory<byte> Topic => _data.AsMemory(0, _topicLength);

    /// <summary>The payload bytes (decoded protobuf for GTFS-RT).</summary>
    public ReadOnlyMemory<byte> Payload => _data.AsMemory(_topicLength);

    /// <summary>Why a malformed line was rejected.</summary>
    public RejectReason Rejection { get; }

    /// <summary>The file it came from.</summary>
    public string Source { get; }

    /// <summary>1-based line number in <see cref="Source"/>.</summary>
    public long LineNumber { get; }

    /// <summary>The replay round (0 for the first pass, 1 after the first loop, ...).</summary>
    public int Loop { get; }
}
