using System.Collections.Concurrent;
using Fleet.Actors;
using Fleet.Actors.Persistence;

namespace Fleet.Actors.Tests;

/// <summary>Commands for the test ledger entity.</summary>
public abstract record LedgerCommand
{
    /// <summary>Persist <see cref="Value"/>; complete <see cref="Ack"/> after the event is stored and applied.</summary>
    public sealed record Append(int Value, TaskCompletionSource? Ack = null) : LedgerCommand;

    /// <summary>Reply with the values so far.</summary>
    public sealed record Read(TaskCompletionSource<int[]> Reply) : LedgerCommand;

    /// <summary>Throws while the shared failure budget for <see cref="Key"/> lasts, after corrupting in-memory state.</summary>
    public sealed record Flaky(string Key, TaskCompletionSource? Done = null) : LedgerCommand;

    /// <summary>Passivate after this message.</summary>
    public sealed record Sleep : LedgerCommand;
}

/// <summary>The ledger's only event.</summary>
public sealed record ValueAdded(int Value);

/// <summary>The ledger's state: every value, in order.</summary>
public sealed class LedgerState
{
    public List<int> Values { get; set; } = [];
}

/// <summary>
/// Failure budgets shared by every incarnation of an entity (an incarnation is thrown away on restart, so a
/// "fail twice, then succeed" script must live outside it).
/// </summary>
public sealed class FailureScript
{
    private readonly ConcurrentDictionary<string, int> _remaining = new();

    public void FailTimes(string key, int times) => _remaining[key] = times;

    public bool ShouldFail(string key) =>
        _remaining.TryGetValue(key, out var left) && left > 0 && _remaining.TryUpdate(key, left - 1, left);
}

/// <summary>A persistent test entity that stores integers.</summary>
public sealed class Ledger(FailureScript? script = null) : PersistentEntity<LedgerCommand, LedgerState, ValueAdded>(new LedgerState())
{
    protected override LedgerState Apply(LedgerState state, ValueAdded @event)
    {
        state.Values.Add(@event.Value);
        return state;
    }

    protected override void Receive(LedgerCommand message)
    {
        switch (message)
        {
            case LedgerCommand.Append append:
                Persist(new ValueAdded(append.Value), () => append.Ack?.TrySetResult());
                break;
            case LedgerCommand.Read read:
                read.Reply.TrySetResult([.. State.Values]);
                break;
            case LedgerCommand.Flaky flaky:
                // Corrupt the in-memory state first: a restart must throw this away and recover from the journal.
                State.Values.Add(-1);
                if (script?.ShouldFail(flaky.Key) == true)
                {
                    throw new InvalidOperationException($"scripted failure for {flaky.Key}");
                }

                State.Values.RemoveAt(State.Values.Count - 1);
                flaky.Done?.TrySetResult();
                break;
            case LedgerCommand.Sleep:
                Context.Passivate();
                break;
        }
    }
}

/// <summary>Messages for the plain (non-persistent) probe entity.</summary>
public abstract record ProbeMessage
{
    public sealed record Hit(int Sequence) : ProbeMessage;

    public sealed record Report(TaskCompletionSource<int[]> Reply) : ProbeMessage;

    public sealed record Block(ManualResetEventSlim Entered, ManualResetEventSlim Gate) : ProbeMessage;

    public sealed record Ping(TaskCompletionSource Done) : ProbeMessage;
}

/// <summary>A plain entity that records what it received and checks that its shard never runs two messages at once.</summary>
public sealed class Probe(ConcurrencyMeter? meter = null) : Entity<ProbeMessage>
{
    private readonly List<int> _seen = [];

    protected override void Receive(ProbeMessage message)
    {
        meter?.Enter();
        try
        {
            switch (message)
            {
                case ProbeMessage.Hit hit:
                    _seen.Add(hit.Sequence);
                    break;
                case ProbeMessage.Report report:
                    report.Reply.TrySetResult([.. _seen]);
                    break;
                case ProbeMessage.Block block:
                    // Test device only: holds the shard's worker so the mailbox fills up.
                    block.Entered.Set();
                    block.Gate.Wait(TimeSpan.FromSeconds(30));
                    break;
                case ProbeMessage.Ping ping:
                    ping.Done.TrySetResult();
                    break;
            }
        }
        finally
        {
            meter?.Exit();
        }
    }
}

/// <summary>Counts how many entity calls overlap.</summary>
public sealed class ConcurrencyMeter
{
    private int _inside;
    private int _max;

    public int Max => Volatile.Read(ref _max);

    public void Enter()
    {
        var now = Interlocked.Increment(ref _inside);
        int seen;
        while (now > (seen = Volatile.Read(ref _max)) && Interlocked.CompareExchange(ref _max, now, seen) != seen)
        {
        }
    }

    public void Exit() => Interlocked.Decrement(ref _inside);
}

/// <summary>Collects lifecycle events and lets a test await one, with a message naming what was awaited.</summary>
public sealed class LifecycleProbe
{
    private readonly Lock _gate = new();
    private readonly List<EntityLifecycleEvent> _events = [];
    private readonly List<(Func<IReadOnlyList<EntityLifecycleEvent>, bool> Done, TaskCompletionSource Tcs)> _waiters = [];

    public void Observe(EntityLifecycleEvent e)
    {
        lock (_gate)
        {
            _events.Add(e);
            _waiters.RemoveAll(w =>
            {
                if (!w.Done(_events))
                {
                    return false;
                }

                w.Tcs.TrySetResult();
                return true;
            });
        }
    }

    public int Count(string entityId, EntityLifecycle lifecycle)
    {
        lock (_gate)
        {
            return _events.Count(e => e.EntityId == entityId && e.Lifecycle == lifecycle);
        }
    }

    public int Count(EntityLifecycle lifecycle)
    {
        lock (_gate)
        {
            return _events.Count(e => e.Lifecycle == lifecycle);
        }
    }

    public Task WaitFor(string entityId, EntityLifecycle lifecycle, int times = 1) =>
        WaitUntil(events => events.Count(e => e.EntityId == entityId && e.Lifecycle == lifecycle) >= times,
            $"{lifecycle} x{times} of entity '{entityId}'");

    public Task WaitForCount(EntityLifecycle lifecycle, int times) =>
        WaitUntil(events => events.Count(e => e.Lifecycle == lifecycle) >= times, $"{lifecycle} x{times} of any entity");

    private Task WaitUntil(Func<IReadOnlyList<EntityLifecycleEvent>, bool> done, string what)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (done(_events))
            {
                return Task.CompletedTask;
            }

            _waiters.Add((done, tcs));
        }

        return tcs.Task.Within(what);
    }
}

/// <summary>Awaiting with a deadline and a message that names what was awaited.</summary>
public static class TestWait
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    public static async Task Within(this Task task, string what)
    {
        try
        {
            await task.WaitAsync(Deadline, TestContext.Current.CancellationToken);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"timed out after {Deadline.TotalSeconds} s waiting for {what}");
        }
    }

    public static async Task<T> Within<T>(this Task<T> task, string what)
    {
        try
        {
            return await task.WaitAsync(Deadline, TestContext.Current.CancellationToken);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"timed out after {Deadline.TotalSeconds} s waiting for {what}");
        }
    }

    public static async Task<int[]> ReadLedgerAsync(this ShardRegion<LedgerCommand> region, string entityId)
    {
        var reply = new TaskCompletionSource<int[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        await region.TellAsync(entityId, new LedgerCommand.Read(reply), TestContext.Current.CancellationToken);
        return await reply.Task.Within($"Read reply from ledger '{entityId}'");
    }

    public static async Task AppendAsync(this ShardRegion<LedgerCommand> region, string entityId, int value)
    {
        var ack = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await region.TellAsync(entityId, new LedgerCommand.Append(value, ack), TestContext.Current.CancellationToken);
        await ack.Task.Within($"persist ack of value {value} on ledger '{entityId}'");
    }
}

/// <summary>Collects replayed events for journal tests.</summary>
public sealed class ReplayCollector : IReplayTarget
{
    public List<(long SequenceNr, byte[] Payload)> Events { get; } = [];

    public void OnReplayed(long sequenceNr, ReadOnlySpan<byte> payload) => Events.Add((sequenceNr, payload.ToArray()));
}

/// <summary>A journal that fails chosen writes and records replays; everything else goes to an inner journal.</summary>
public sealed class FaultyJournal(IJournal inner) : IJournal
{
    public Func<JournalWrite, bool>? FailWhen { get; set; }

    public ConcurrentQueue<(string PersistenceId, long From)> Replays { get; } = new();

    public ValueTask EnqueueAsync(JournalWrite write, CancellationToken cancellationToken = default)
    {
        if (FailWhen?.Invoke(write) == true)
        {
            write.Complete(new IOException("injected journal write failure"));
            return ValueTask.CompletedTask;
        }

        return inner.EnqueueAsync(write, cancellationToken);
    }

    public ValueTask<SnapshotRecord?> LoadSnapshotAsync(string persistenceId, CancellationToken cancellationToken = default) =>
        inner.LoadSnapshotAsync(persistenceId, cancellationToken);

    public ValueTask<long> ReplayAsync(string persistenceId, long fromSequenceNr, IReplayTarget target, CancellationToken cancellationToken = default)
    {
        Replays.Enqueue((persistenceId, fromSequenceNr));
        return inner.ReplayAsync(persistenceId, fromSequenceNr, target, cancellationToken);
    }

    public ValueTask<long> ReadHighestSequenceNrAsync(string persistenceId, CancellationToken cancellationToken = default) =>
        inner.ReadHighestSequenceNrAsync(persistenceId, cancellationToken);

    public ValueTask<IReadOnlyList<string>> ReadRememberedAsync(string region, CancellationToken cancellationToken = default) =>
        inner.ReadRememberedAsync(region, cancellationToken);

    public Task FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

    public JournalMetrics GetMetrics() => inner.GetMetrics();

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
