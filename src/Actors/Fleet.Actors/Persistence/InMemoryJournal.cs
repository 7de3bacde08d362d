using System.Diagnostics;

namespace Fleet.Actors.Persistence;

/// <summary>A journal in process memory: for tests, benchmarks and entities whose history may be lost.</summary>
/// <remarks>
/// Thread-safe (one lock). Writes complete synchronously inside <see cref="EnqueueAsync"/>, on the caller's
/// thread, so there is no queue to bound.
/// </remarks>
public sealed class InMemoryJournal : IJournal
{
    private readonly object _gate = new();
    private readonly Dictionary<string, List<byte[]>> _events = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SnapshotRecord> _snapshots = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _remembered = new(StringComparer.Ordinal);
    private readonly JournalCounters _counters = new();
    private readonly JournalWrite[] _single = new JournalWrite[1];

    /// <inheritdoc />
    public ValueTask EnqueueAsync(JournalWrite write, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(write);
        cancellationToken.ThrowIfCancellationRequested();
        Exception? error = null;
        lock (_gate)
        {
            var started = Stopwatch.GetTimestamp();
            write.EnqueuedAt = started;
            try
            {
                Apply(write);
            }
            catch (InvalidOperationException ex)
            {
                error = ex;
            }

            _single[0] = write;
            _counters.RecordBatch(_single, started, error is null ? 0 : 1);
        }

        write.Complete(error);
        return ValueTask.CompletedTask;
    }

    private void Apply(JournalWrite write)
    {
        switch (write)
        {
            case AppendEvents append:
                if (!_events.TryGetValue(append.PersistenceId, out var list))
                {
                    list = [];
                    _events.Add(append.PersistenceId, list);
                }

                if (append.FirstSequenceNr != list.Count + 1)
                {
                    throw new InvalidOperationException(
                        $"'{append.PersistenceId}': sequence number {append.FirstSequenceNr} does not follow {list.Count}");
                }

                list.AddRange(append.Payloads);
                break;
            case SaveSnapshot snapshot:
                _snapshots[snapshot.PersistenceId] = new SnapshotRecord(snapshot.SequenceNr, snapshot.Payload);
                break;
            case RememberEntity remember:
                if (!_remembered.TryGetValue(remember.Region, out var set))
                {
                    set = new HashSet<string>(StringComparer.Ordinal);
                    _remembered.Add(remember.Region, set);
                }

                if (remember.Active)
                {
                    set.Add(remember.EntityId);
                }
                else
                {
                    set.Remove(remember.EntityId);
                }

                break;
        }
    }

    /// <inheritdoc />
    public ValueTask<SnapshotRecord?> LoadSnapshotAsync(string persistenceId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_snapshots.GetValueOrDefault(persistenceId));
        }
    }

    /// <inheritdoc />
    public ValueTask<long> ReplayAsync(string persistenceId, long fromSequenceNr, IReplayTarget target, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        byte[][] copy;
        lock (_gate)
        {
            if (!_events.TryGetValue(persistenceId, out var list) || list.Count < fromSequenceNr)
            {
                return ValueTask.FromResult(0L);
            }

            copy = [.. list];
        }

        // Replay outside the lock: the target deserializes and applies, which may be slow.
        var from = Math.Max(1, fromSequenceNr);
        for (var seq = from; seq <= copy.Length; seq++)
        {
            target.OnReplayed(seq, copy[seq - 1]);
        }

        return ValueTask.FromResult((long)copy.Length);
    }

    /// <inheritdoc />
    public ValueTask<long> ReadHighestSequenceNrAsync(string persistenceId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_events.TryGetValue(persistenceId, out var list) ? list.Count : 0L);
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<string>> ReadRememberedAsync(string region, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            IReadOnlyList<string> ids = _remembered.TryGetValue(region, out var set) ? [.. set] : [];
            return ValueTask.FromResult(ids);
        }
    }

    /// <inheritdoc />
    public Task FlushAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    /// <inheritdoc />
    public JournalMetrics GetMetrics() => _counters.Snapshot(0);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
