using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using Fleet.Actors.Persistence;
using Microsoft.Extensions.Logging;

namespace Fleet.Actors;

/// <summary>A message on its way to an entity; a null <see cref="EntityId"/> is a wake-up token.</summary>
internal readonly record struct Envelope<TMessage>(string? EntityId, TMessage Message);

/// <summary>
/// One shard: a single-threaded loop over a bounded mailbox that owns a map from entity id to
/// <see cref="EntityCell{TMessage}"/>.
/// </summary>
/// <remarks>
/// <para>Thread-safety: <see cref="Writer"/>, <see cref="OnWriteCompleted(JournalWrite, Exception)"/> and the system queue are used by
/// any thread; everything else only by the loop, which runs on the region's bounded worker scheduler, so an
/// entity never sees two messages at once.</para>
/// <para>The system queue is a <see cref="ConcurrentQueue{T}"/> and bounded by construction: it holds journal
/// completions (at most one event write, one snapshot and one remember write outstanding per live entity),
/// recovery completions and restarts (at most one per live entity), one passivation tick (deduplicated) and a
/// stop request. Wake-ups go through the mailbox as a token, deduplicated by <c>_wakePending</c>; when the
/// mailbox is full or closed, or the loop is not reading it, they go through <c>_signal</c> instead.</para>
/// </remarks>
[DebuggerDisplay("shard {Id} entities={LiveEntities} mailbox={MailboxDepth}")]
internal sealed partial class Shard<TMessage> : IJournalWriteObserver, IDisposable
{
    private readonly ShardRegion<TMessage> _region;
    private readonly Func<string, Entity<TMessage>> _factory;
    private readonly Channel<Envelope<TMessage>> _mailbox;
    private readonly ConcurrentQueue<SystemMessage> _system = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly Dictionary<string, EntityCell<TMessage>> _entities = new(StringComparer.Ordinal);
    private readonly IJournal? _journal;
    private readonly ILogger _logger;
    private readonly DeadLetterOffice _deadLetters;
    private readonly Action<EntityLifecycleEvent>? _observer;
    private readonly string _persistencePrefix;
    private readonly int _batchSize;
    private readonly int _bufferCapacity;
    private readonly int _snapshotEvery;
    private readonly int _maxAttempts;
    private readonly bool _rememberEntities;
    private readonly long _idleTicks;
    private readonly TimeSpan _minBackoff;
    private readonly TimeSpan _maxBackoff;
    private readonly List<EntityCell<TMessage>> _scratch = [];
    private ITimer? _passivationTimer;
    private List<Func<ValueTask>>? _outbox;
    private List<EntityCell<TMessage>>? _recovering;
    private EntityCell<TMessage>? _stalled;
    private TMessage _stalledMessage = default!;
    private int _wakePending;
    private int _signalMode;
    private int _tickPending;
    private int _busy;
    private long _now;
    private bool _mailboxDone;
    private bool _stopping;
    private bool _finalSnapshotsIssued;
    private Exception? _lastStopError;

    // Counters: written by the loop only, read by metrics with Volatile.Read.
    private long _processed;
    private long _restarts;
    private long _passivations;
    private long _recoveries;
    private long _stopped;
    private long _buffered;
    private long _live;

    public Shard(ShardRegion<TMessage> region, int id, Func<string, Entity<TMessage>> factory, ShardRegionOptions options,
        IJournal? journal, TimeProvider time, ILogger logger, DeadLetterOffice deadLetters)
    {
        _region = region;
        Id = id;
        _factory = factory;
        _journal = journal;
        Time = time;
        _logger = logger;
        _deadLetters = deadLetters;
        _observer = options.LifecycleObserver;
        _persistencePrefix = region.Name + "/";
        _batchSize = options.MailboxBatchSize;
        _bufferCapacity = options.EntityBufferCapacity;
        _snapshotEvery = options.SnapshotEvery;
        _maxAttempts = options.MaxDeliveryAttempts;
        _rememberEntities = options.RememberEntities && journal is not null;
        _minBackoff = options.MinRestartBackoff;
        _maxBackoff = options.MaxRestartBackoff;
        _mailbox = Channel.CreateBounded<Envelope<TMessage>>(new BoundedChannelOptions(options.MailboxCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = false,
        });

        var idle = options.PassivationIdleTimeout;
        if (idle > TimeSpan.Zero && idle != Timeout.InfiniteTimeSpan)
        {
            _idleTicks = (long)(idle.TotalSeconds * time.TimestampFrequency);
            var period = idle / 4;
            _passivationTimer = time.CreateTimer(static s => ((Shard<TMessage>)s!).OnPassivationTick(), this, period, period);
        }
    }

    public int Id { get; }

    public string RegionName => _region.Name;

    public TimeProvider Time { get; }

    public ChannelWriter<Envelope<TMessage>> Writer => _mailbox.Writer;

    public long LiveEntities => Volatile.Read(ref _live);

    public int MailboxDepth => _mailbox.Reader.Count;

    public long Processed => Volatile.Read(ref _processed);

    public long Restarts => Volatile.Read(ref _restarts);

    public long Passivations => Volatile.Read(ref _passivations);

    public long Recoveries => Volatile.Read(ref _recoveries);

    public long Stopped => Volatile.Read(ref _stopped);

    public long Buffered => Volatile.Read(ref _buffered);

    // ---------------------------------------------------------------------------------------------------
    // Inbound from other threads
    // ---------------------------------------------------------------------------------------------------

    public void StartRemembered(string entityId) => EnqueueSystem(new SystemMessage(SystemKind.StartEntity, EntityId: entityId));

    public void RequestStop()
    {
        EnqueueSystem(new SystemMessage(SystemKind.Stop));
        _mailbox.Writer.TryComplete();
    }

    public void OnWriteCompleted(JournalWrite write, Exception? error) =>
        EnqueueSystem(new SystemMessage(SystemKind.WriteCompleted, (EntityCell<TMessage>?)write.State, write, error));

    private void OnPassivationTick()
    {
        if (Interlocked.Exchange(ref _tickPending, 1) == 0)
        {
            EnqueueSystem(new SystemMessage(SystemKind.PassivationTick));
        }
    }

    private void EnqueueSystem(SystemMessage message)
    {
        _system.Enqueue(message);
        if (Interlocked.Exchange(ref _wakePending, 1) == 0)
        {
            // The token makes a loop waiting on the mailbox look at the system queue. If it cannot be written
            // (mailbox full or closed) or the loop is not reading the mailbox, release the signal instead: a
            // full mailbox wakes the loop anyway, and a spurious release only costs one extra iteration.
            if (!_mailbox.Writer.TryWrite(default) || Volatile.Read(ref _signalMode) != 0)
            {
                try
                {
                    _signal.Release();
                }
                catch (ObjectDisposedException)
                {
                    // The shard finished after a stop; nothing is left to wake.
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------
    // The loop
    // ---------------------------------------------------------------------------------------------------

    /// <summary>Runs until the region stops and every entity is quiescent and snapshotted.</summary>
    public async Task RunAsync()
    {
        var reader = _mailbox.Reader;

        // The loop never exits on an error: a failure in one iteration is logged and the next one runs, so one
        // bad message cannot take the other entities of the shard down. It exits only after a stop, once the
        // mailbox is drained, every write is complete and the final snapshots are stored.
        while (true)
        {
            try
            {
                var signalMode = _stalled is not null || _mailboxDone;
                Volatile.Write(ref _signalMode, signalMode ? 1 : 0);
                Volatile.Write(ref _wakePending, 0);
                ProcessSystemQueue();
                StartRecoveries();

                if (_outbox is { Count: > 0 })
                {
                    // Awaiting resumes on the region's worker scheduler (ConfigureAwait(true)), which is what keeps
                    // the loop on its bounded set of workers.
                    await FlushOutboxAsync().ConfigureAwait(true);
                    continue;
                }

                if ((_stalled is null || TryUnstall()) && !_mailboxDone)
                {
                    if (DrainMailbox() || !_system.IsEmpty)
                    {
                        continue;
                    }

                    StartRecoveries();
                    if (!await reader.WaitToReadAsync().ConfigureAwait(true))
                    {
                        _mailboxDone = true;
                    }

                    continue;
                }

                if (_mailboxDone && _stopping && _stalled is null && TryFinish())
                {
                    break;
                }

                if (!signalMode || !_system.IsEmpty)
                {
                    continue;
                }

                StartRecoveries();
                await _signal.WaitAsync().ConfigureAwait(true);
            }
            catch (Exception ex)
            {
                Log.ShardLoopFailed(_logger, _region.Name, Id, ex);
            }
        }

        _passivationTimer?.Dispose();
    }

    private bool DrainMailbox()
    {
        var reader = _mailbox.Reader;
        _now = Time.GetTimestamp();
        var read = 0;
        while (read < _batchSize && reader.TryRead(out var envelope))
        {
            read++;
            if (envelope.EntityId is null)
            {
                continue;
            }

            Deliver(envelope.EntityId, envelope.Message);
            if (_stalled is not null || _outbox is { Count: > 0 })
            {
                break;
            }
        }

        return read > 0;
    }

    private void ProcessSystemQueue()
    {
        while (_system.TryDequeue(out var message))
        {
            switch (message.Kind)
            {
                case SystemKind.WriteCompleted:
                    OnWriteCompleted(message.Cell!, message.Write!, message.Error);
                    break;
                case SystemKind.RecoveryCompleted:
                    CompleteRecovery(message.Cell!, message.Error);
                    break;
                case SystemKind.RestartDue:
                    OnRestartDue(message.Cell!);
                    break;
                case SystemKind.PassivationTick:
                    Volatile.Write(ref _tickPending, 0);
                    PassivateIdle();
                    break;
                case SystemKind.StartEntity:
                    if (!_stopping && !_entities.ContainsKey(message.EntityId!))
                    {
                        CreateCell(message.EntityId!, remembered: true);
                    }

                    break;
                case SystemKind.Stop:
                    OnStop();
                    break;
            }

            if (_outbox is { Count: > 0 })
            {
                return;
            }
        }
    }

    private async Task FlushOutboxAsync()
    {
        var outbox = _outbox!;
        _outbox = null;
        foreach (var send in outbox)
        {
            try
            {
                await send().ConfigureAwait(true);
            }
            catch (Exception ex)
            {
                Log.SendFailed(_logger, _region.Name, Id, ex);
            }
        }
    }

    private bool TryUnstall()
    {
        var cell = _stalled!;
        if (cell.State == EntityState.NoState || cell.BufferedCount < _bufferCapacity)
        {
            _stalled = null;
            var message = _stalledMessage;
            _stalledMessage = default!;
            Deliver(cell.Id, message);
        }

        return _stalled is null;
    }

    // ---------------------------------------------------------------------------------------------------
    // Delivery
    // ---------------------------------------------------------------------------------------------------

    private void Deliver(string entityId, TMessage message)
    {
        if (!_entities.TryGetValue(entityId, out var cell))
        {
            cell = CreateCell(entityId, remembered: false);
        }

        cell.LastActive = _now;
        if (cell.State == EntityState.NoState)
        {
            // Stopped while being created (no journal for a persistent entity): nowhere to buffer the message.
            _deadLetters.Add(new DeadLetter(_region.Name, entityId, message, DeadLetterReason.EntityStopped, 0, _lastStopError, Time.GetUtcNow()));
            return;
        }

        if (cell.State == EntityState.Active)
        {
            Invoke(cell, message);
        }
        else if (cell.BufferedCount < _bufferCapacity)
        {
            (cell.Buffer ??= new Queue<TMessage>()).Enqueue(message);
            _buffered++;
        }
        else
        {
            // The entity is behind: stop reading the mailbox until it catches up, so the senders wait.
            _stalled = cell;
            _stalledMessage = message;
        }
    }

    private void Invoke(EntityCell<TMessage> cell, TMessage message)
    {
        _processed++;
        try
        {
            cell.Entity!.Receive(message);
        }
        catch (Exception ex)
        {
            Fail(cell, hasMessage: true, message, ex);
            return;
        }

        cell.Attempts = 0;
        cell.RestartsInRow = 0;
        AfterCall(cell, hasMessage: true, message);
    }

    /// <summary>After a successful call into the entity: start its write or honour its passivation request.</summary>
    private void AfterCall(EntityCell<TMessage> cell, bool hasMessage, TMessage message)
    {
        if (cell.Persistent is { HasPendingEvents: true } persistent)
        {
            StartPersist(cell, persistent, hasMessage, message);
        }
        else if (cell.PassivateRequested && cell.State == EntityState.Active)
        {
            cell.PassivateRequested = false;
            Passivate(cell);
        }
    }

    private void FlushBuffer(EntityCell<TMessage> cell)
    {
        while (cell.State == EntityState.Active && cell.Buffer is { Count: > 0 } buffer)
        {
            var message = buffer.Dequeue();
            _buffered--;
            Invoke(cell, message);
        }

        if (cell.Buffer is { Count: 0 })
        {
            cell.Buffer = null;
        }
    }

    private EntityCell<TMessage> CreateCell(string entityId, bool remembered)
    {
        var cell = new EntityCell<TMessage>(this, entityId) { LastActive = _now };
        _entities.Add(entityId, cell);
        _live++;
        Notify(cell, EntityLifecycle.Started);
        if (_rememberEntities && !remembered)
        {
            EnqueueJournal(new RememberEntity(_region.Name, entityId, active: true) { Observer = this, State = cell });
        }

        StartIncarnation(cell);
        return cell;
    }

    /// <summary>Creates the entity object and recovers it (persistent) or activates it (plain).</summary>
    private void StartIncarnation(EntityCell<TMessage> cell)
    {
        Entity<TMessage> entity;
        try
        {
            entity = _factory(cell.Id) ?? throw new InvalidOperationException("the entity factory returned null");
        }
        catch (Exception ex)
        {
            Fail(cell, hasMessage: false, default!, ex);
            return;
        }

        entity.Attach(cell);
        cell.Entity = entity;
        cell.Persistent = entity as IPersistentEntity;
        if (cell.Persistent is { } persistent)
        {
            if (_journal is null)
            {
                StopEntity(cell, new InvalidOperationException($"region '{_region.Name}' has persistent entities but no journal"));
                return;
            }

            cell.Transition(EntityState.Recovering);
            (_recovering ??= []).Add(cell);
            return;
        }

        Activate(cell);
    }

    /// <summary>Starts one recovery task for the entities that began recovering since the last call.</summary>
    /// <remarks>
    /// Called by the loop before it waits for anything: the entities created while draining one mailbox batch
    /// are recovered together (one journal call, one connection, one read transaction for SQLite) instead of
    /// one task and one round of queries each.
    /// </remarks>
    private void StartRecoveries()
    {
        if (_recovering is not { Count: > 0 } cells)
        {
            return;
        }

        _recovering = null;
        var journal = _journal!;
        _ = Task.Run(() => RecoverAsync(cells, journal));
    }

    private async Task RecoverAsync(List<EntityCell<TMessage>> cells, IJournal journal)
    {
        // Runs on a pool thread while the cells are Recovering: the shard buffers their messages and does not
        // touch the entities, so replaying into them here is safe; each completion goes back through the system
        // queue, which orders it before anything the shard does next with the entity.
        try
        {
            await journal.RecoverAsync(cells).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // The journal broke its contract (it reports failures per target); the cells still recovering must
            // not wait forever. A cell already completed ignores the second report.
            Log.RecoveryFailed(_logger, _region.Name, Id, ex);
            foreach (var cell in cells)
            {
                OnRecoveryCompleted(cell, ex);
            }
        }
    }

    /// <summary>From the recovery task: hands the outcome to the loop.</summary>
    public void OnRecoveryCompleted(EntityCell<TMessage> cell, Exception? error) =>
        EnqueueSystem(new SystemMessage(SystemKind.RecoveryCompleted, cell, Error: error));

    private void CompleteRecovery(EntityCell<TMessage> cell, Exception? error)
    {
        if (cell.State != EntityState.Recovering)
        {
            return;
        }

        if (error is not null)
        {
            StopEntity(cell, error);
            return;
        }

        var persistent = cell.Persistent!;
        cell.EventsSinceSnapshot = (int)Math.Min(int.MaxValue, persistent.SequenceNr - persistent.SnapshotSequenceNr);
        _recoveries++;
        Activate(cell);
    }

    private void Activate(EntityCell<TMessage> cell)
    {
        cell.Transition(EntityState.Active);
        var restarted = cell.Restarting;
        cell.Restarting = false;
        if (restarted)
        {
            Notify(cell, EntityLifecycle.Restarted);
        }
        else if (cell.Persistent is not null)
        {
            // A plain entity's Started was reported when its cell was created; a persistent one is now recovered.
            Notify(cell, EntityLifecycle.Recovered);
        }

        try
        {
            cell.Entity!.OnStarted();
        }
        catch (Exception ex)
        {
            Fail(cell, hasMessage: false, default!, ex);
            return;
        }

        AfterCall(cell, hasMessage: false, default!);
        FlushBuffer(cell);
    }

    // ---------------------------------------------------------------------------------------------------
    // Persistence
    // ---------------------------------------------------------------------------------------------------

    private string PersistenceId(EntityCell<TMessage> cell) => _persistencePrefix + cell.Id;

    public string PersistenceIdOf(EntityCell<TMessage> cell) => PersistenceId(cell);

    private void StartPersist(EntityCell<TMessage> cell, IPersistentEntity persistent, bool hasMessage, TMessage message)
    {
        AppendEvents write;
        try
        {
            write = persistent.CreateWrite(PersistenceId(cell));
        }
        catch (Exception ex)
        {
            // Serialization failed: nothing was written, so this is the handler's failure.
            Fail(cell, hasMessage, message, ex);
            return;
        }

        write.Observer = this;
        write.State = cell;
        cell.Transition(EntityState.Persisting);
        EnqueueJournal(write);
    }

    private void EnqueueJournal(JournalWrite write)
    {
        ValueTask pending;
        try
        {
            pending = _journal!.EnqueueAsync(write);
        }
        catch (Exception ex)
        {
            write.Complete(ex);
            return;
        }

        if (!pending.IsCompletedSuccessfully)
        {
            // The journal's queue is full: the shard waits (via the outbox) before reading more messages.
            var task = pending.AsTask();
            (_outbox ??= []).Add(async () =>
            {
                try
                {
                    await task.ConfigureAwait(true);
                }
                catch (Exception ex)
                {
                    write.Complete(ex);
                }
            });
        }
    }

    private void OnWriteCompleted(EntityCell<TMessage> cell, JournalWrite write, Exception? error)
    {
        switch (write)
        {
            case AppendEvents append:
                OnEventsWritten(cell, append, error);
                break;
            case SaveSnapshot snapshot:
                OnSnapshotWritten(cell, snapshot, error);
                break;
            case RememberEntity remember when error is not null:
                Log.RememberFailed(_logger, _region.Name, remember.EntityId, error);
                break;
        }
    }

    private void OnEventsWritten(EntityCell<TMessage> cell, AppendEvents append, Exception? error)
    {
        if (cell.State != EntityState.Persisting)
        {
            return;
        }

        if (error is not null)
        {
            StopEntity(cell, error);
            return;
        }

        var persistent = cell.Persistent!;
        try
        {
            persistent.ConfirmPersisted();
        }
        catch (Exception ex)
        {
            // The events are stored; whatever ran after them failed. Restart from the journal (which includes
            // them) instead of retrying anything.
            Fail(cell, hasMessage: false, default!, ex);
            return;
        }

        cell.EventsSinceSnapshot += append.EventCount;
        if (_snapshotEvery > 0 && cell.EventsSinceSnapshot >= _snapshotEvery)
        {
            SaveSnapshotOf(cell, persistent);
        }

        if (persistent.HasPendingEvents)
        {
            StartPersist(cell, persistent, hasMessage: false, default!);
            return;
        }

        cell.Transition(EntityState.Active);
        if (cell.PassivateRequested && cell.BufferedCount == 0)
        {
            cell.PassivateRequested = false;
            Passivate(cell);
            return;
        }

        FlushBuffer(cell);
    }

    private void SaveSnapshotOf(EntityCell<TMessage> cell, IPersistentEntity persistent)
    {
        byte[] payload;
        try
        {
            payload = persistent.SerializeSnapshot();
        }
        catch (Exception ex)
        {
            Log.SnapshotFailed(_logger, _region.Name, cell.Id, ex);
            return;
        }

        cell.EventsSinceSnapshot = 0;
        EnqueueJournal(new SaveSnapshot(PersistenceId(cell), persistent.SequenceNr, payload) { Observer = this, State = cell });
    }

    private void OnSnapshotWritten(EntityCell<TMessage> cell, SaveSnapshot snapshot, Exception? error)
    {
        if (error is not null)
        {
            // The events are durable; only recovery gets slower. Not a reason to stop the entity.
            Log.SnapshotFailed(_logger, _region.Name, cell.Id, error);
        }
        else if (cell.Persistent is { } persistent && snapshot.SequenceNr > persistent.SnapshotSequenceNr)
        {
            persistent.SnapshotSequenceNr = snapshot.SequenceNr;
        }

        if (cell.State != EntityState.Passivating)
        {
            return;
        }

        // Journal writes complete in order, so any snapshot completing now covers what passivation needs or
        // an older state plus durable events: either way the entity can leave memory.
        if (_stopping)
        {
            Remove(cell);
        }
        else if (cell.BufferedCount == 0)
        {
            Remove(cell);
            _passivations++;
            Notify(cell, EntityLifecycle.Passivated);
        }
        else
        {
            if (_rememberEntities)
            {
                EnqueueJournal(new RememberEntity(_region.Name, cell.Id, active: true) { Observer = this, State = cell });
            }

            cell.Transition(EntityState.Active);
            FlushBuffer(cell);
        }
    }

    // ---------------------------------------------------------------------------------------------------
    // Passivation
    // ---------------------------------------------------------------------------------------------------

    private void PassivateIdle()
    {
        if (_stopping || _idleTicks <= 0)
        {
            return;
        }

        var now = Time.GetTimestamp();
        _scratch.Clear();
        foreach (var cell in _entities.Values)
        {
            if (cell.State == EntityState.Active && cell.BufferedCount == 0 && now - cell.LastActive >= _idleTicks)
            {
                _scratch.Add(cell);
            }
        }

        foreach (var cell in _scratch)
        {
            Passivate(cell);
        }

        _scratch.Clear();
    }

    private void Passivate(EntityCell<TMessage> cell)
    {
        if (cell.State != EntityState.Active || cell.BufferedCount > 0)
        {
            return;
        }

        if (_rememberEntities)
        {
            EnqueueJournal(new RememberEntity(_region.Name, cell.Id, active: false) { Observer = this, State = cell });
        }

        if (cell.Persistent is { } persistent && persistent.SequenceNr > persistent.SnapshotSequenceNr)
        {
            cell.Transition(EntityState.Passivating);
            SaveSnapshotOf(cell, persistent);
            return;
        }

        Remove(cell);
        _passivations++;
        Notify(cell, EntityLifecycle.Passivated);
    }

    private void Remove(EntityCell<TMessage> cell)
    {
        if (_entities.TryGetValue(cell.Id, out var current) && ReferenceEquals(current, cell))
        {
            _entities.Remove(cell.Id);
            _live--;
        }

        cell.RestartTimer?.Dispose();
        cell.RestartTimer = null;
        if (cell.State != EntityState.NoState)
        {
            cell.Transition(EntityState.NoState);
        }
    }

    // ---------------------------------------------------------------------------------------------------
    // Supervision
    // ---------------------------------------------------------------------------------------------------

    private void Fail(EntityCell<TMessage> cell, bool hasMessage, TMessage message, Exception error)
    {
        cell.Persistent?.DiscardPending();
        var now = Time.GetUtcNow();
        if (hasMessage)
        {
            var attempt = ++cell.Attempts;
            var dropped = attempt >= _maxAttempts;
            _deadLetters.Add(new DeadLetter(_region.Name, cell.Id, message, dropped ? DeadLetterReason.MaxAttemptsExceeded : DeadLetterReason.HandlerFailed, attempt, error, now));
            if (dropped)
            {
                cell.Attempts = 0;
            }
            else
            {
                // Retry first after the restart, ahead of everything buffered meanwhile (rare path: copy).
                var buffer = new Queue<TMessage>(cell.BufferedCount + 1);
                buffer.Enqueue(message);
                if (cell.Buffer is { } old)
                {
                    while (old.TryDequeue(out var m))
                    {
                        buffer.Enqueue(m);
                    }
                }

                cell.Buffer = buffer;
                _buffered++;
            }
        }
        else
        {
            _deadLetters.Add(new DeadLetter(_region.Name, cell.Id, null, DeadLetterReason.ContinuationFailed, 0, error, now));
        }

        cell.RestartsInRow++;
        cell.Transition(EntityState.WaitingForRestart);

        var delay = _stopping ? TimeSpan.Zero : Backoff(cell.RestartsInRow);
        if (delay <= TimeSpan.Zero)
        {
            EnqueueSystem(new SystemMessage(SystemKind.RestartDue, cell));
        }
        else
        {
            cell.RestartTimer?.Dispose();
            cell.RestartTimer = Time.CreateTimer(
                static s =>
                {
                    var c = (EntityCell<TMessage>)s!;
                    c.Shard.EnqueueSystem(new SystemMessage(SystemKind.RestartDue, c));
                },
                cell,
                delay,
                Timeout.InfiniteTimeSpan);
        }

        // Reported once the restart is scheduled, so an observer that reacts to Failed (a test advancing a fake clock)
        // never races the creation of the restart timer.
        Notify(cell, EntityLifecycle.Failed, error);
    }

    private TimeSpan Backoff(int restartsInRow)
    {
        var factor = Math.Pow(2, Math.Min(restartsInRow - 1, 30));
        var delay = TimeSpan.FromTicks((long)Math.Min(_maxBackoff.Ticks, _minBackoff.Ticks * factor));
        return delay;
    }

    private void OnRestartDue(EntityCell<TMessage> cell)
    {
        if (cell.State != EntityState.WaitingForRestart)
        {
            return;
        }

        cell.RestartTimer?.Dispose();
        cell.RestartTimer = null;
        cell.Entity = null;
        cell.Persistent = null;
        cell.Restarting = true;
        _restarts++;
        StartIncarnation(cell);
    }

    private void StopEntity(EntityCell<TMessage> cell, Exception error)
    {
        Log.EntityStopped(_logger, _region.Name, cell.Id, cell.State, error);
        _lastStopError = error;
        _stopped++;
        var now = Time.GetUtcNow();
        if (cell.Buffer is { } buffer)
        {
            while (buffer.TryDequeue(out var message))
            {
                _buffered--;
                _deadLetters.Add(new DeadLetter(_region.Name, cell.Id, message, DeadLetterReason.EntityStopped, 0, error, now));
            }
        }

        Notify(cell, EntityLifecycle.Stopped, error);
        Remove(cell);
    }

    // ---------------------------------------------------------------------------------------------------
    // Shutdown
    // ---------------------------------------------------------------------------------------------------

    private void OnStop()
    {
        _stopping = true;
        _passivationTimer?.Dispose();
        _passivationTimer = null;
        foreach (var cell in _entities.Values)
        {
            if (cell.State == EntityState.WaitingForRestart)
            {
                // Drain means deliver: restart now instead of after the backoff.
                cell.RestartTimer?.Dispose();
                cell.RestartTimer = null;
                EnqueueSystem(new SystemMessage(SystemKind.RestartDue, cell));
            }
        }
    }

    /// <summary>Once everything is quiescent, snapshots the entities with unsnapshotted events; true when done.</summary>
    private bool TryFinish()
    {
        if (_busy > 0 || _outbox is { Count: > 0 })
        {
            return false;
        }

        if (!_finalSnapshotsIssued)
        {
            _finalSnapshotsIssued = true;
            _scratch.Clear();
            foreach (var cell in _entities.Values)
            {
                if (cell.State == EntityState.Active && cell.Persistent is { } p && p.SequenceNr > p.SnapshotSequenceNr)
                {
                    _scratch.Add(cell);
                }
            }

            foreach (var cell in _scratch)
            {
                cell.Transition(EntityState.Passivating);
                SaveSnapshotOf(cell, cell.Persistent!);
            }

            _scratch.Clear();
            return _busy == 0 && _outbox is not { Count: > 0 };
        }

        return true;
    }

    // ---------------------------------------------------------------------------------------------------
    // Entity context services
    // ---------------------------------------------------------------------------------------------------

    public void Send<T>(EntityCell<TMessage> cell, ShardRegion<T> region, string entityId, T message)
    {
        ArgumentNullException.ThrowIfNull(region);
        ArgumentNullException.ThrowIfNull(entityId);
        ThrowIfRecovering(cell);

        // Once one send had to wait, later ones wait behind it, so the order of an entity's sends holds.
        if (_outbox is not { Count: > 0 } && region.TryTell(entityId, message))
        {
            return;
        }

        (_outbox ??= []).Add(() => region.TellAsync(entityId, message));
    }

    public void Emit<T>(EntityCell<TMessage> cell, ChannelWriter<T> output, T item)
    {
        ArgumentNullException.ThrowIfNull(output);
        ThrowIfRecovering(cell);
        if (_outbox is not { Count: > 0 } && output.TryWrite(item))
        {
            return;
        }

        (_outbox ??= []).Add(() => output.WriteAsync(item));
    }

    private static void ThrowIfRecovering(EntityCell<TMessage> cell)
    {
        if (cell.State == EntityState.Recovering)
        {
            ThrowHelper.SideEffectDuringRecovery(cell.Id);
        }
    }

    /// <summary>Releases the wake-up signal and timers once the loop has finished.</summary>
    public void Dispose()
    {
        _passivationTimer?.Dispose();
        _signal.Dispose();
    }

    // ---------------------------------------------------------------------------------------------------
    // Bookkeeping
    // ---------------------------------------------------------------------------------------------------

    public void OnTransition(EntityState from, EntityState to)
    {
        if (IsBusy(from))
        {
            _busy--;
        }

        if (IsBusy(to))
        {
            _busy++;
        }
    }

    private static bool IsBusy(EntityState state) =>
        state is EntityState.Recovering or EntityState.Persisting or EntityState.Passivating or EntityState.WaitingForRestart;

    public void OnIllegalTransition(EntityCell<TMessage> cell, EntityState from, EntityState to)
    {
        Log.IllegalTransition(_logger, _region.Name, cell.Id, from, to);
#if DEBUG
        // Akka's FailOnIllegalTransition: loud while tests run, logged in production.
        throw new InvalidOperationException($"illegal transition of entity '{cell.Id}' from {from} to {to}");
#endif
    }

    private void Notify(EntityCell<TMessage> cell, EntityLifecycle lifecycle, Exception? error = null)
    {
        if (_observer is null)
        {
            return;
        }

        try
        {
            _observer(new EntityLifecycleEvent(_region.Name, cell.Id, lifecycle, error));
        }
        catch (Exception ex)
        {
            Log.ObserverFailed(_logger, _region.Name, ex);
        }
    }

    private enum SystemKind : byte
    {
        WriteCompleted,
        RecoveryCompleted,
        RestartDue,
        PassivationTick,
        StartEntity,
        Stop,
    }

    private readonly record struct SystemMessage(
        SystemKind Kind,
        EntityCell<TMessage>? Cell = null,
        JournalWrite? Write = null,
        Exception? Error = null,
        string? EntityId = null);
}
