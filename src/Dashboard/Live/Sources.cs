using System.Collections.Concurrent;

namespace Fleet.Dashboard.Live;

/// <summary>The health of one input (a replay, an MQTT connection, a GTFS-RT poller), for <c>/api/health</c>.</summary>
/// <remarks>Thread-safe: the source updates it, the API reads it.</remarks>
public sealed class SourceStatus(string name, string kind) : Fleet.Ingest.Streams.ISourceHealth
{
    private long _events;
    private long _lastEventTicks;
    private long _failures;
    private readonly ConcurrentDictionary<string, long> _otherRejections = new(StringComparer.Ordinal);

    /// <summary>A name unique among the sources (<c>replay</c>, <c>mqtt:host</c>, ...).</summary>
    public string Name { get; } = name;

    /// <summary>What kind of source this is (<c>replay</c>, <c>mqtt</c>, <c>gtfs-rt</c>).</summary>
    public string Kind { get; } = kind;

    /// <summary>True while the source is connected (a replay is connected while it runs).</summary>
    public bool Connected { get; set; }

    /// <summary>The last error, or null.</summary>
    public string? LastError { get; set; }

    /// <summary>Events received from this source.</summary>
    public long Events => Interlocked.Read(ref _events);

    /// <summary>Event time of the newest event, or null.</summary>
    public DateTime? LastEventTime
    {
        get
        {
            var ticks = Interlocked.Read(ref _lastEventTicks);
            return ticks == 0 ? null : new DateTime(ticks, DateTimeKind.Utc);
        }
    }

    /// <summary>Counts one event.</summary>
    public void CountEvent(DateTime eventTime)
    {
        Interlocked.Increment(ref _events);
        Interlocked.Exchange(ref _lastEventTicks, eventTime.Ticks);
    }

    /// <summary>
    /// What the source is doing: <c>starting</c>, <c>connecting</c>, <c>connected</c>, <c>reconnecting</c>,
    /// <c>polling</c>, <c>stopped</c> or <c>failed</c>. Null until the source sets it (then <see cref="Connected"/> tells).
    /// </summary>
    public string? State { get; set; }

    /// <summary>Connections (or polls) that failed since the start.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>Counts one failed connection or poll (with <see cref="LastError"/> set by the caller).</summary>
    public void CountFailure() => Interlocked.Increment(ref _failures);

    /// <inheritdoc />
    public void ReportState(string state, bool connected)
    {
        State = state;
        Connected = connected;
    }

    /// <inheritdoc />
    public void ReportFailure(string reason)
    {
        LastError = reason;
        CountFailure();
    }

    /// <inheritdoc />
    public void ReportRecovered() => LastError = null;

    /// <inheritdoc />
    public void ReportRejected(string reason, string detail)
    {
        CountRejected(reason);
        LastError = detail;
    }

    /// <summary>Wall clock minus the newest event time, in seconds; null before the first event.</summary>
    public double? LagSeconds(DateTime nowUtc) =>
        LastEventTime is { } last ? Math.Max(0, (nowUtc - last).TotalSeconds) : null;

    /// <summary>
    /// Parser rejections of this source (HFP reasons from <see cref="Fleet.Ingest.RejectReason"/>), attached by the
    /// source when it creates its parser.
    /// </summary>
    public Fleet.Ingest.RejectionCounts? ParserRejections { get; set; }

    /// <summary>Counts a rejection the parser does not see (e.g. a GTFS-RT snapshot that does not decode).</summary>
    public void CountRejected(string reason) => _otherRejections.AddOrUpdate(reason, 1, static (_, n) => n + 1);

    /// <summary>Rejected messages of this source by reason name (parser reasons and the others), non-zero only.</summary>
    public IReadOnlyDictionary<string, long> Rejected
    {
        get
        {
            var all = new SortedDictionary<string, long>(StringComparer.Ordinal);
            if (ParserRejections is { } parser)
            {
                foreach (var (reason, count) in parser.NonZero())
                {
                    all[reason.ToString()] = count;
                }
            }

            foreach (var (reason, count) in _otherRejections)
            {
                all[reason] = all.GetValueOrDefault(reason) + count;
            }

            return all;
        }
    }
}

/// <summary>Every source of the running host.</summary>
public sealed class SourceRegistry
{
    private readonly ConcurrentDictionary<string, SourceStatus> _sources = new(StringComparer.Ordinal);

    /// <summary>Adds (or returns the existing) source of that name.</summary>
    public SourceStatus Register(string name, string kind) => _sources.GetOrAdd(name, n => new SourceStatus(n, kind));

    /// <summary>All sources, by name.</summary>
    public IReadOnlyList<SourceStatus> All => [.. _sources.Values.OrderBy(s => s.Name, StringComparer.Ordinal)];
}
