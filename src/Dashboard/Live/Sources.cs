using System.Collections.Concurrent;

namespace Fleet.Dashboard.Live;

/// <summary>The health of one input (a replay, an MQTT connection, a GTFS-RT poller), for <c>/api/health</c>.</summary>
/// <remarks>Thread-safe: the source updates it, the API reads it.</remarks>
public sealed class SourceStatus(string name, string kind)
{
    private long _events;
    private long _lastEventTicks;

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
