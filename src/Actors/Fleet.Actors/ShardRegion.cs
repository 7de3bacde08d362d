using System.Diagnostics;
using System.Threading.Channels;
using Fleet.Actors.Persistence;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Fleet.Actors;

/// <summary>
/// The entry point to one kind of entity: routes each message to its <see cref="Shard{TMessage}"/> by a stable
/// hash of the entity id and runs the shards on a bounded set of workers.
/// </summary>
/// <typeparam name="TMessage">The message type of the region's entities.</typeparam>
/// <remarks>
/// <para>Thread-safe: any thread may send. Messages from one sender to one entity arrive in the order sent.</para>
/// <para>Lifetime: shards start in the constructor; <see cref="StartAsync"/> brings back remembered entities;
/// <see cref="StopAsync"/> (or <see cref="DisposeAsync"/>) stops accepting, drains every mailbox, waits for
/// outstanding writes, snapshots the entities and flushes the journal. The journal is not disposed: its
/// owner does that after the region stopped.</para>
/// </remarks>
[DebuggerDisplay("region {Name} shards={_shards.Length}")]
public sealed class ShardRegion<TMessage> : IAsyncDisposable
{
    private readonly Shard<TMessage>[] _shards;
    private readonly Task[] _loops;
    private readonly IJournal? _journal;
    private readonly ShardRegionOptions _options;
    private readonly ILogger _logger;
    private readonly Lock _metricsGate = new();
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _stopping;
    private int _stopStarted;
    private long _lastProcessed;
    private long _lastSampleAt;

    /// <summary>Creates the region and starts its shards.</summary>
    /// <param name="name">The region's name; part of every persistence id, so keep it stable.</param>
    /// <param name="entityFactory">Creates an entity for an id (first message, restart, recovery).</param>
    /// <param name="options">Settings; defaults when null.</param>
    /// <param name="journal">Where persistent entities store events; required if any entity is persistent.</param>
    /// <param name="timeProvider">The clock for passivation, backoff and entities; the system clock when null.</param>
    /// <param name="logger">Where the runtime logs.</param>
    public ShardRegion(
        string name,
        Func<string, Entity<TMessage>> entityFactory,
        ShardRegionOptions? options = null,
        IJournal? journal = null,
        TimeProvider? timeProvider = null,
        ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(entityFactory);
        _options = options ?? new ShardRegionOptions();
        _options.Validate();
        Name = name;
        _journal = journal;
        _logger = logger ?? NullLogger.Instance;
        var time = timeProvider ?? TimeProvider.System;
        DeadLetters = new DeadLetterOffice(_options.DeadLetterHistory, _logger);
        _shards = new Shard<TMessage>[_options.ShardCount];
        for (var i = 0; i < _shards.Length; i++)
        {
            _shards[i] = new Shard<TMessage>(this, i, entityFactory, _options, journal, time, _logger, DeadLetters);
        }

        // The bounded set of workers: at most Workers shard loops run at once, whatever the thread pool does.
        var workers = new ConcurrentExclusiveSchedulerPair(TaskScheduler.Default, _options.Workers).ConcurrentScheduler;
        _loops = new Task[_shards.Length];
        for (var i = 0; i < _shards.Length; i++)
        {
            _loops[i] = Task.Factory.StartNew(_shards[i].RunAsync, CancellationToken.None, TaskCreationOptions.DenyChildAttach, workers).Unwrap();
        }

        _lastSampleAt = Stopwatch.GetTimestamp();
    }

    /// <summary>The region's name.</summary>
    public string Name { get; }

    /// <summary>Number of shards.</summary>
    public int ShardCount => _shards.Length;

    /// <summary>Failed and dropped messages.</summary>
    public DeadLetterOffice DeadLetters { get; }

    /// <summary>Which shard an entity lives in.</summary>
    public int ShardOf(string entityId) => StableHash.ShardOf(entityId, _shards.Length);

    /// <summary>Starts the remembered entities (when <see cref="ShardRegionOptions.RememberEntities"/> is on).</summary>
    /// <returns>How many entities were started.</returns>
    public async Task<int> StartAsync(CancellationToken cancellationToken = default)
    {
        if (!_options.RememberEntities || _journal is null)
        {
            return 0;
        }

        var ids = await _journal.ReadRememberedAsync(Name, cancellationToken).ConfigureAwait(false);
        Log.StartingRemembered(_logger, Name, ids.Count);
        foreach (var id in ids)
        {
            _shards[ShardOf(id)].StartRemembered(id);
        }

        return ids.Count;
    }

    /// <summary>Sends a message; completes at once unless the shard's mailbox is full, then waits for room.</summary>
    /// <exception cref="InvalidOperationException">The region is stopping.</exception>
    public ValueTask TellAsync(string entityId, TMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entityId);
        if (_stopping)
        {
            ThrowHelper.RegionStopped(Name);
        }

        var writer = _shards[ShardOf(entityId)].Writer;
        var envelope = new Envelope<TMessage>(entityId, message);
        return writer.TryWrite(envelope) ? default : WaitAndWriteAsync(writer, envelope, cancellationToken);
    }

    /// <summary>Sends a message if the shard's mailbox has room; false when it is full.</summary>
    /// <exception cref="InvalidOperationException">The region is stopping.</exception>
    public bool TryTell(string entityId, TMessage message)
    {
        ArgumentNullException.ThrowIfNull(entityId);
        if (_stopping)
        {
            ThrowHelper.RegionStopped(Name);
        }

        return _shards[ShardOf(entityId)].Writer.TryWrite(new Envelope<TMessage>(entityId, message));
    }

    private async ValueTask WaitAndWriteAsync(ChannelWriter<Envelope<TMessage>> writer, Envelope<TMessage> envelope, CancellationToken cancellationToken)
    {
        try
        {
            await writer.WriteAsync(envelope, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            ThrowHelper.RegionStopped(Name);
        }
    }

    /// <summary>The region's counters now; <see cref="ShardRegionMetrics.MessagesPerSecond"/> is measured since the previous call.</summary>
    public ShardRegionMetrics GetMetrics()
    {
        long live = 0, processed = 0, depth = 0, buffered = 0, restarts = 0, passivations = 0, recoveries = 0, stopped = 0;
        var maxDepth = 0;
        foreach (var shard in _shards)
        {
            live += shard.LiveEntities;
            processed += shard.Processed;
            var d = shard.MailboxDepth;
            depth += d;
            maxDepth = Math.Max(maxDepth, d);
            buffered += shard.Buffered;
            restarts += shard.Restarts;
            passivations += shard.Passivations;
            recoveries += shard.Recoveries;
            stopped += shard.Stopped;
        }

        double rate;
        lock (_metricsGate)
        {
            var now = Stopwatch.GetTimestamp();
            var seconds = (now - _lastSampleAt) / (double)Stopwatch.Frequency;
            rate = _lastProcessed == 0 && processed == 0 || seconds <= 0 ? 0 : (processed - _lastProcessed) / seconds;
            _lastProcessed = processed;
            _lastSampleAt = now;
        }

        return new ShardRegionMetrics(Name, _shards.Length, live, processed, rate, depth, maxDepth, buffered,
            DeadLetters.Count, restarts, passivations, recoveries, stopped, _journal?.GetMetrics());
    }

    /// <summary>Stops accepting messages, drains the mailboxes, snapshots the entities and flushes the journal.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _stopStarted, 1) == 0)
        {
            _stopping = true;
            long live = 0;
            foreach (var shard in _shards)
            {
                live += shard.LiveEntities;
                shard.RequestStop();
            }

            try
            {
                await Task.WhenAll(_loops).ConfigureAwait(false);
                if (_journal is not null)
                {
                    await _journal.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                }

                foreach (var shard in _shards)
                {
                    shard.Dispose();
                }

                Log.RegionStopped(_logger, Name, live);
                _stopped.TrySetResult();
            }
            catch (Exception ex)
            {
                _stopped.TrySetException(ex);
            }
        }

        await _stopped.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Same as <see cref="StopAsync"/>.</summary>
    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);
}
