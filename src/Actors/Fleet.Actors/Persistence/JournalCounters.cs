using System.Diagnostics;

namespace Fleet.Actors.Persistence;

/// <summary>The counters behind <see cref="JournalMetrics"/>; updated by one writer, read by anyone.</summary>
internal sealed class JournalCounters
{
    private long _batches;
    private long _writes;
    private long _events;
    private long _failed;
    private long _latencyTicks;
    private long _completedForLatency;
    private int _lastBatchSize;
    private int _maxBatchSize;
    private long _batchedWrites;
    private long _lastBatchTicks;

    public void RecordBatch(IReadOnlyList<JournalWrite> batch, long startedAt, int failed)
    {
        var now = Stopwatch.GetTimestamp();
        long latency = 0;
        long events = 0;
        foreach (var write in batch)
        {
            latency += now - write.EnqueuedAt;
            events += write.EventCount;
        }

        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _writes, batch.Count - failed);
        Interlocked.Add(ref _failed, failed);
        Interlocked.Add(ref _events, events);
        Interlocked.Add(ref _latencyTicks, latency);
        Interlocked.Add(ref _completedForLatency, batch.Count);
        Interlocked.Add(ref _batchedWrites, batch.Count);
        Volatile.Write(ref _lastBatchSize, batch.Count);
        Volatile.Write(ref _lastBatchTicks, now - startedAt);
        if (batch.Count > Volatile.Read(ref _maxBatchSize))
        {
            Volatile.Write(ref _maxBatchSize, batch.Count);
        }
    }

    public JournalMetrics Snapshot(int queueDepth)
    {
        var batches = Interlocked.Read(ref _batches);
        var completed = Interlocked.Read(ref _completedForLatency);
        var ticksPerMs = Stopwatch.Frequency / 1000.0;
        return new JournalMetrics(
            batches,
            Interlocked.Read(ref _writes),
            Interlocked.Read(ref _events),
            Interlocked.Read(ref _failed),
            Volatile.Read(ref _lastBatchSize),
            Volatile.Read(ref _maxBatchSize),
            batches == 0 ? 0 : (double)Interlocked.Read(ref _batchedWrites) / batches,
            completed == 0 ? 0 : Interlocked.Read(ref _latencyTicks) / ticksPerMs / completed,
            Volatile.Read(ref _lastBatchTicks) / ticksPerMs,
            queueDepth);
    }
}
