using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Fleet.Actors.Persistence;

/// <summary>
/// A journal with one writer loop: writes of many entities queue in a bounded channel and go to the store in
/// batches, one transaction per batch.
/// </summary>
/// <remarks>
/// <para>If a batch transaction fails, it is rolled back and its writes are retried one transaction each, so
/// a bad write (for example a duplicate sequence number) fails alone and the other entities' writes land.</para>
/// <para>Writes complete in the order they were queued. Thread-safe.</para>
/// </remarks>
public abstract class BatchingJournal : IJournal
{
    private readonly Channel<JournalWrite> _queue;
    private readonly JournalCounters _counters = new();
    private readonly int _maxBatchSize;
    private readonly string _name;
    private Task _writer = Task.CompletedTask;
    private int _disposed;

    /// <summary>Creates the queue; call <see cref="StartWriter"/> once the store is ready.</summary>
    protected BatchingJournal(string name, int queueCapacity, int maxBatchSize, ILogger? logger)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(queueCapacity);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBatchSize);
        _name = name;
        _maxBatchSize = maxBatchSize;
        Logger = logger ?? NullLogger.Instance;
        _queue = Channel.CreateBounded<JournalWrite>(new BoundedChannelOptions(queueCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
        });
    }

    /// <summary>Where the journal logs.</summary>
    protected ILogger Logger { get; }

    /// <summary>Starts the writer loop.</summary>
    protected void StartWriter() => _writer = Task.Run(WriterLoopAsync);

    /// <summary>Writes every write of <paramref name="batch"/> in one transaction, or throws and writes none.</summary>
    protected abstract ValueTask WriteBatchAsync(IReadOnlyList<JournalWrite> batch);

    /// <inheritdoc />
    public ValueTask EnqueueAsync(JournalWrite write, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(write);
        write.EnqueuedAt = Stopwatch.GetTimestamp();
        return _queue.Writer.TryWrite(write) ? default : _queue.Writer.WriteAsync(write, cancellationToken);
    }

    /// <inheritdoc />
    public Task FlushAsync(CancellationToken cancellationToken = default) => this.WriteAsync(new FlushMarker(), cancellationToken);

    /// <inheritdoc />
    public JournalMetrics GetMetrics() => _counters.Snapshot(_queue.Reader.Count);

    /// <inheritdoc />
    public abstract ValueTask<SnapshotRecord?> LoadSnapshotAsync(string persistenceId, CancellationToken cancellationToken = default);

    /// <inheritdoc />
    public abstract ValueTask<long> ReplayAsync(string persistenceId, long fromSequenceNr, IReplayTarget target, CancellationToken cancellationToken = default);

    /// <inheritdoc />
    public abstract ValueTask<long> ReadHighestSequenceNrAsync(string persistenceId, CancellationToken cancellationToken = default);

    /// <inheritdoc cref="IJournal.RecoverAsync" />
    public virtual ValueTask RecoverAsync(IReadOnlyList<IRecoveryTarget> targets, CancellationToken cancellationToken = default) =>
        JournalRecovery.OneByOneAsync(this, targets, cancellationToken);

    /// <inheritdoc />
    public abstract ValueTask<IReadOnlyList<string>> ReadRememberedAsync(string region, CancellationToken cancellationToken = default);

    private async Task WriterLoopAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<JournalWrite>(_maxBatchSize);
        var store = new List<JournalWrite>(_maxBatchSize);

        // Runs until the queue is completed by DisposeAsync. Each iteration takes whatever is queued (up to the
        // batch size): under load batches grow by themselves, idle writes go out alone with no added latency.
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            store.Clear();
            while (batch.Count < _maxBatchSize && reader.TryRead(out var write))
            {
                batch.Add(write);
                if (write is not FlushMarker)
                {
                    store.Add(write);
                }
            }

            var started = Stopwatch.GetTimestamp();
            var failed = 0;
            try
            {
                failed = await WriteAsync(store).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // Never expected (WriteAsync completes every write), but the loop must not die with writes queued.
                Log.WriterLoopFailed(Logger, _name, ex);
                foreach (var write in store)
                {
                    write.Complete(ex);
                }
            }

            foreach (var write in batch)
            {
                if (write is FlushMarker)
                {
                    write.Complete(null);
                }
            }

            if (store.Count > 0)
            {
                _counters.RecordBatch(store, started, failed);
            }
        }
    }

    /// <summary>Writes the batch, falling back to one transaction per write; returns how many failed.</summary>
    private async Task<int> WriteAsync(List<JournalWrite> store)
    {
        if (store.Count == 0)
        {
            return 0;
        }

        try
        {
            await WriteBatchAsync(store).ConfigureAwait(false);
            foreach (var write in store)
            {
                write.Complete(null);
            }

            return 0;
        }
        catch (Exception ex) when (store.Count > 1)
        {
            Log.BatchFailed(Logger, _name, store.Count, ex);
        }
        catch (Exception ex)
        {
            Log.WriteFailed(Logger, _name, ex);
            store[0].Complete(ex);
            return 1;
        }

        var failed = 0;
        var single = new JournalWrite[1];
        foreach (var write in store)
        {
            single[0] = write;
            try
            {
                await WriteBatchAsync(single).ConfigureAwait(false);
                write.Complete(null);
            }
            catch (Exception ex)
            {
                Log.WriteFailed(Logger, _name, ex);
                write.Complete(ex);
                failed++;
            }
        }

        return failed;
    }

    /// <summary>Stops accepting writes, writes what is queued and releases the store.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _queue.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
        await DisposeStoreAsync().ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases connections after the writer loop has finished.</summary>
    protected abstract ValueTask DisposeStoreAsync();
}
