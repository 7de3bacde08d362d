namespace Fleet.Ingest;

/// <summary>Why an input message or recording line was rejected. Every rejection carries exactly one.</summary>
/// <remarks>The names are part of the output of <c>fleet inspect --json</c>; do not rename them.</remarks>
public enum RejectReason : byte
{
    /// <summary>Not rejected.</summary>
    None = 0,

    /// <summary>The line or payload ends before the message does (no JSON payload, or JSON cut off).</summary>
    TruncatedLine,

    /// <summary>The recording line does not start with an ISO-8601 receive time.</summary>
    BadReceiveTime,

    /// <summary>The line or payload is larger than the configured maximum.</summary>
    Oversized,

    /// <summary>The topic is not an HFP v1/v2 topic or lacks the operator and vehicle levels.</summary>
    BadTopic,

    /// <summary>The payload is not well-formed JSON or not shaped <c>{"TYPE":{...}}</c>.</summary>
    BadJson,

    /// <summary>The payload's event type is not one of the HFP vehicle event types (VP, DUE, ... VJOUT).</summary>
    UnknownEventType,

    /// <summary>The topic's event type level and the payload's event type disagree.</summary>
    EventTypeMismatch,

    /// <summary>The event time <c>tst</c> is absent or null.</summary>
    MissingTimestamp,

    /// <summary>A position message has no <c>lat</c>/<c>long</c> fields, or only one of the two.</summary>
    MissingCoordinates,

    /// <summary>A coordinate is outside [-90, 90] / [-180, 180] or not finite.</summary>
    CoordinatesOutOfRange,

    /// <summary>A known field has a value of the wrong type or shape (e.g. <c>"tst":"yesterday"</c>).</summary>
    BadFieldValue,

    /// <summary>A GTFS-RT line's payload is not valid base64.</summary>
    BadBase64,

    /// <summary>A CSV row has a different number of columns than the header.</summary>
    BadCsvRow,
}

/// <summary>Counts rejections per <see cref="RejectReason"/>.</summary>
/// <remarks>
/// One writer (the ingest loop); readers on other threads (progress reports) may see slightly stale counts,
/// never torn ones (64-bit reads and writes are atomic on the platforms we run on).
/// </remarks>
public sealed class RejectionCounts
{
    private static readonly RejectReason[] s_reasons = Enum.GetValues<RejectReason>();
    private readonly long[] _counts = new long[s_reasons.Length];

    /// <summary>The count for one reason.</summary>
    public long this[RejectReason reason] => Volatile.Read(ref _counts[(int)reason]);

    /// <summary>The sum over every reason.</summary>
    public long Total
    {
        get
        {
            long sum = 0;
            for (var i = 1; i < _counts.Length; i++)
            {
                sum += Volatile.Read(ref _counts[i]);
            }

            return sum;
        }
    }

    /// <summary>Adds one rejection.</summary>
    public void Increment(RejectReason reason)
    {
        ArgumentOutOfRangeException.ThrowIfEqual(reason, RejectReason.None);
        Volatile.Write(ref _counts[(int)reason], _counts[(int)reason] + 1);
    }

    /// <summary>The reasons with a non-zero count, in enum order.</summary>
    public IEnumerable<KeyValuePair<RejectReason, long>> NonZero()
    {
        for (var i = 1; i < _counts.Length; i++)
        {
            var c = Volatile.Read(ref _counts[i]);
            if (c != 0)
            {
                yield return new(s_reasons[i], c);
            }
        }
    }
}
