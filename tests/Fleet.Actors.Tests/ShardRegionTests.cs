using Fleet.Actors.Persistence;
using Fleet.Testing;

namespace Fleet.Actors.Tests;

public sealed class ShardRegionTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ShardRegion<LedgerCommand> Ledgers(IJournal journal, LifecycleProbe? probe = null, TimeProvider? time = null,
        FailureScript? script = null, Action<ShardRegionOptions>? configure = null, string name = "ledger")
    {
        var options = new ShardRegionOptions { ShardCount = 8, LifecycleObserver = probe is null ? null : probe.Observe };
        configure?.Invoke(options);
        return new ShardRegion<LedgerCommand>(name, _ => new Ledger(script), options, journal, time);
    }

    [Fact]
    public async Task Tell_FirstMessage_CreatesEntityAndDelivers()
    {
        var probe = new LifecycleProbe();
        await using var region = new ShardRegion<ProbeMessage>("probe", _ => new Probe(),
            new ShardRegionOptions { LifecycleObserver = probe.Observe });

        await region.TellAsync("a", new ProbeMessage.Hit(7), Ct);
        var reply = new TaskCompletionSource<int[]>();
        await region.TellAsync("a", new ProbeMessage.Report(reply), Ct);

        Assert.Equal(new[] { 7 }, await reply.Task.Within("report of entity 'a'"));
        Assert.Equal(1, probe.Count("a", EntityLifecycle.Started));
        var metrics = region.GetMetrics();
        Assert.Equal(1, metrics.LiveEntities);
        Assert.Equal(2, metrics.MessagesProcessed);
    }

    [Fact]
    public async Task Tell_ManyMessagesToManyEntities_EachEntitySeesItsMessagesInOrder()
    {
        await using var region = new ShardRegion<ProbeMessage>("probe", _ => new Probe(),
            new ShardRegionOptions { ShardCount = 4, MailboxCapacity = 16 });
        const int Entities = 20, PerEntity = 500;
        for (var i = 0; i < PerEntity; i++)
        {
            for (var e = 0; e < Entities; e++)
            {
                await region.TellAsync($"e{e}", new ProbeMessage.Hit(i), Ct);
            }
        }

        for (var e = 0; e < Entities; e++)
        {
            var reply = new TaskCompletionSource<int[]>();
            await region.TellAsync($"e{e}", new ProbeMessage.Report(reply), Ct);
            Assert.Equal(Enumerable.Range(0, PerEntity), await reply.Task.Within($"report of entity e{e}"));
        }
    }

    [Fact]
    public async Task Shard_ConcurrentSenders_NeverRunsTwoMessagesAtOnce()
    {
        var meter = new ConcurrencyMeter();
        await using var region = new ShardRegion<ProbeMessage>("probe", _ => new Probe(meter),
            new ShardRegionOptions { ShardCount = 1, Workers = 2 });

        await Task.WhenAll(Enumerable.Range(0, 4).Select(sender => Task.Run(async () =>
        {
            for (var i = 0; i < 2000; i++)
            {
                await region.TellAsync($"s{sender}-{i % 50}", new ProbeMessage.Hit(i), Ct);
            }
        }, Ct)));
        var done = new TaskCompletionSource();
        await region.TellAsync("last", new ProbeMessage.Ping(done), Ct);
        await done.Task.Within("ping after 8000 messages");

        Assert.Equal(1, meter.Max);
        Assert.Equal(8001, region.GetMetrics().MessagesProcessed);
    }

    [Fact]
    public async Task Tell_MailboxFull_SenderWaitsUntilShardCatchesUp()
    {
        await using var region = new ShardRegion<ProbeMessage>("probe", _ => new Probe(),
            new ShardRegionOptions { ShardCount = 1, MailboxCapacity = 4 });
        using var entered = new ManualResetEventSlim();
        using var gate = new ManualResetEventSlim();
        await region.TellAsync("a", new ProbeMessage.Block(entered, gate), Ct);
        Assert.True(entered.Wait(TestWait.Deadline, Ct), "the blocking message never reached entity 'a'");

        for (var i = 0; i < 4; i++)
        {
            Assert.True(region.TryTell("b", new ProbeMessage.Hit(i)), $"message {i} should fit in the mailbox");
        }

        Assert.False(region.TryTell("b", new ProbeMessage.Hit(4)));
        var waiting = region.TellAsync("b", new ProbeMessage.Hit(4), Ct);
        Assert.False(waiting.IsCompleted);
        Assert.Equal(4, region.GetMetrics().MailboxDepth);

        gate.Set();
        await waiting.AsTask().Within("the waiting sender to get room in the mailbox");
        var reply = new TaskCompletionSource<int[]>();
        await region.TellAsync("b", new ProbeMessage.Report(reply), Ct);
        Assert.Equal(new[] { 0, 1, 2, 3, 4 }, await reply.Task.Within("report of entity 'b'"));
    }

    [Fact]
    public async Task Persist_ThenRead_StateIncludesEventAndJournalHasIt()
    {
        var journal = new InMemoryJournal();
        await using var region = Ledgers(journal);

        await region.AppendAsync("x", 1);
        await region.AppendAsync("x", 2);

        Assert.Equal(new[] { 1, 2 }, await region.ReadLedgerAsync("x"));
        Assert.Equal(2, await journal.ReadHighestSequenceNrAsync("ledger/x", Ct));
    }

    [Fact]
    public async Task Passivation_IdleEntity_IsSnapshottedRemovedAndRecoveredOnNextMessage()
    {
        var time = new FakeTimeProvider();
        var probe = new LifecycleProbe();
        var journal = new InMemoryJournal();
        await using var region = Ledgers(journal, probe, time);
        await region.AppendAsync("x", 1);
        await region.AppendAsync("x", 2);
        await region.AppendAsync("x", 3);

        time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(0, probe.Count("x", EntityLifecycle.Passivated));
        time.Advance(TimeSpan.FromMinutes(1.5));
        await probe.WaitFor("x", EntityLifecycle.Passivated);

        var snapshot = await journal.LoadSnapshotAsync("ledger/x", Ct);
        Assert.NotNull(snapshot);
        Assert.Equal(3, snapshot.SequenceNr);
        Assert.Equal(0, region.GetMetrics().LiveEntities);

        Assert.Equal(new[] { 1, 2, 3 }, await region.ReadLedgerAsync("x"));
        Assert.Equal(2, probe.Count("x", EntityLifecycle.Recovered));
        Assert.Equal(1, region.GetMetrics().Passivations);
    }

    [Fact]
    public async Task Passivation_EntityKeepsGettingMessages_StaysInMemory()
    {
        var time = new FakeTimeProvider();
        var probe = new LifecycleProbe();
        await using var region = Ledgers(new InMemoryJournal(), probe, time);

        for (var i = 0; i < 6; i++)
        {
            await region.AppendAsync("busy", i);
            time.Advance(TimeSpan.FromMinutes(1));
        }

        await region.AppendAsync("busy", 99);
        Assert.Equal(0, probe.Count("busy", EntityLifecycle.Passivated));
        Assert.Equal(1, region.GetMetrics().LiveEntities);
    }

    [Fact]
    public async Task Passivate_RequestedByEntity_RemovesItAfterSnapshot()
    {
        var probe = new LifecycleProbe();
        var journal = new InMemoryJournal();
        await using var region = Ledgers(journal, probe);
        await region.AppendAsync("x", 5);

        await region.TellAsync("x", new LedgerCommand.Sleep(), Ct);
        await probe.WaitFor("x", EntityLifecycle.Passivated);

        Assert.Equal(1, (await journal.LoadSnapshotAsync("ledger/x", Ct))!.SequenceNr);
    }

    [Fact]
    public async Task Supervision_HandlerThrows_RestartsFromPersistedStateAndRetriesMessage()
    {
        var time = new FakeTimeProvider();
        var probe = new LifecycleProbe();
        var script = new FailureScript();
        await using var region = Ledgers(new InMemoryJournal(), probe, time, script);
        await region.AppendAsync("x", 1);
        await region.AppendAsync("x", 2);

        script.FailTimes("once", 1);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await region.TellAsync("x", new LedgerCommand.Flaky("once", done), Ct);
        await probe.WaitFor("x", EntityLifecycle.Failed);
        Assert.False(done.Task.IsCompleted);

        time.Advance(TimeSpan.FromMilliseconds(200));
        await done.Task.Within("the retried Flaky message to succeed after the restart");

        // The failed attempt left -1 in the old incarnation's memory; the restart recovered [1, 2] from the journal.
        Assert.Equal(new[] { 1, 2 }, await region.ReadLedgerAsync("x"));
        var letter = Assert.Single(region.DeadLetters.Recent());
        Assert.Equal(DeadLetterReason.HandlerFailed, letter.Reason);
        Assert.Equal(1, letter.Attempt);
        Assert.IsType<InvalidOperationException>(letter.Error);
        Assert.Equal(1, region.GetMetrics().Restarts);
    }

    [Fact]
    public async Task Supervision_MessageFailsThreeTimes_DroppedToDeadLettersWhileOthersRun()
    {
        var time = new FakeTimeProvider();
        var probe = new LifecycleProbe();
        var script = new FailureScript();
        await using var region = Ledgers(new InMemoryJournal(), probe, time, script, o => o.ShardCount = 1);
        await region.AppendAsync("bad", 1);
        script.FailTimes("always", int.MaxValue);

        await region.TellAsync("bad", new LedgerCommand.Flaky("always"), Ct);
        await region.TellAsync("bad", new LedgerCommand.Append(2), Ct);
        await probe.WaitFor("bad", EntityLifecycle.Failed, 1);

        // Same shard, other entity: unaffected while "bad" waits for its restart.
        await region.AppendAsync("good", 10);
        Assert.Equal(new[] { 10 }, await region.ReadLedgerAsync("good"));

        time.Advance(TimeSpan.FromMilliseconds(200));
        await probe.WaitFor("bad", EntityLifecycle.Failed, 2);
        time.Advance(TimeSpan.FromMilliseconds(400));
        await probe.WaitFor("bad", EntityLifecycle.Failed, 3);
        time.Advance(TimeSpan.FromMilliseconds(800));
        await probe.WaitFor("bad", EntityLifecycle.Restarted, 3);

        // The message buffered behind the failing one was delivered after the drop.
        Assert.Equal(new[] { 1, 2 }, await region.ReadLedgerAsync("bad"));
        var letters = region.DeadLetters.Recent();
        Assert.Equal(3, letters.Count);
        Assert.Equal([1, 2, 3], letters.Select(l => l.Attempt));
        Assert.Equal(DeadLetterReason.MaxAttemptsExceeded, letters[^1].Reason);
        Assert.Equal(1, region.DeadLetters.CountOf(DeadLetterReason.MaxAttemptsExceeded));
        Assert.Equal(3, region.GetMetrics().DeadLetters);
    }

    [Fact]
    public async Task JournalFailure_WriteFails_EntityStoppedAndReported()
    {
        var probe = new LifecycleProbe();
        var journal = new FaultyJournal(new InMemoryJournal());
        await using var region = Ledgers(journal, probe);
        await region.AppendAsync("x", 1);

        journal.FailWhen = w => w is AppendEvents;
        await region.TellAsync("x", new LedgerCommand.Append(2), Ct);
        await region.TellAsync("x", new LedgerCommand.Append(3), Ct);
        await probe.WaitFor("x", EntityLifecycle.Stopped);

        Assert.Equal(1, region.GetMetrics().StoppedEntities);
        var letter = Assert.Single(region.DeadLetters.Recent());
        Assert.Equal(DeadLetterReason.EntityStopped, letter.Reason);
        Assert.Equal(new LedgerCommand.Append(3), letter.Message);
        Assert.IsType<IOException>(letter.Error);

        // The next message starts a new incarnation from what the journal really holds.
        journal.FailWhen = null;
        Assert.Equal(new[] { 1 }, await region.ReadLedgerAsync("x"));
    }

    [Fact]
    public async Task Snapshots_EveryNEvents_RecoveryReplaysOnlyLaterEvents()
    {
        var journal = new FaultyJournal(new InMemoryJournal());
        await using (var first = Ledgers(journal, configure: o => o.SnapshotEvery = 5))
        {
            for (var i = 1; i <= 12; i++)
            {
                await first.AppendAsync("x", i);
            }

            Assert.Equal(10, (await journal.LoadSnapshotAsync("ledger/x", Ct))!.SequenceNr);
        }

        // Graceful stop snapshotted the rest.
        Assert.Equal(12, (await journal.LoadSnapshotAsync("ledger/x", Ct))!.SequenceNr);

        await using var second = Ledgers(journal);
        while (journal.Replays.TryDequeue(out _))
        {
        }

        Assert.Equal(Enumerable.Range(1, 12), await second.ReadLedgerAsync("x"));
        Assert.Equal(("ledger/x", 13L), Assert.Single(journal.Replays));
    }

    [Fact]
    public async Task StopAsync_WithQueuedMessages_DrainsPersistsAndSnapshotsEverything()
    {
        var journal = new InMemoryJournal();
        var region = Ledgers(journal, configure: o => o.SnapshotEvery = 0);
        for (var i = 1; i <= 40; i++)
        {
            for (var e = 0; e < 25; e++)
            {
                await region.TellAsync($"e{e}", new LedgerCommand.Append(i), Ct);
            }
        }

        await region.StopAsync(Ct);

        for (var e = 0; e < 25; e++)
        {
            Assert.Equal(40, await journal.ReadHighestSequenceNrAsync($"ledger/e{e}", Ct));
            Assert.Equal(40, (await journal.LoadSnapshotAsync($"ledger/e{e}", Ct))!.SequenceNr);
        }

        Assert.Throws<InvalidOperationException>(() => region.TryTell("e0", new LedgerCommand.Append(41)));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await region.TellAsync("e0", new LedgerCommand.Append(41), Ct));
    }

    [Fact]
    public async Task RememberEntities_AfterRestart_ActiveEntitiesComeBackWithoutMessage()
    {
        var journal = new InMemoryJournal();
        await using (var first = Ledgers(journal, configure: o => o.RememberEntities = true))
        {
            foreach (var id in new[] { "a", "b", "c" })
            {
                await first.AppendAsync(id, 1);
            }
        }

        var probe = new LifecycleProbe();
        await using var second = Ledgers(journal, probe, configure: o => o.RememberEntities = true);
        Assert.Equal(3, await second.StartAsync(Ct));
        await probe.WaitForCount(EntityLifecycle.Recovered, 3);

        Assert.Equal(3, second.GetMetrics().LiveEntities);
        Assert.Equal(0, second.GetMetrics().MessagesProcessed);
    }

    [Fact]
    public async Task RememberEntities_Off_NothingStartsWithoutMessage()
    {
        var journal = new InMemoryJournal();
        await using (var first = Ledgers(journal, configure: o => o.RememberEntities = true))
        {
            await first.AppendAsync("a", 1);
        }

        await using var second = Ledgers(journal);
        Assert.Equal(0, await second.StartAsync(Ct));
        Assert.Equal(0, second.GetMetrics().LiveEntities);
    }

    [Fact]
    public async Task RememberEntities_PassivatedEntity_IsForgotten()
    {
        var journal = new InMemoryJournal();
        var probe = new LifecycleProbe();
        await using (var first = Ledgers(journal, probe, configure: o => o.RememberEntities = true))
        {
            await first.AppendAsync("stays", 1);
            await first.AppendAsync("sleeps", 1);
            await first.TellAsync("sleeps", new LedgerCommand.Sleep(), Ct);
            await probe.WaitFor("sleeps", EntityLifecycle.Passivated);
        }

        Assert.Equal(new[] { "stays" }, await journal.ReadRememberedAsync("ledger", Ct));
    }

    [Fact]
    public async Task Persist_MissingJournal_EntityStoppedWithClearError()
    {
        var probe = new LifecycleProbe();
        await using var region = new ShardRegion<LedgerCommand>("ledger", _ => new Ledger(),
            new ShardRegionOptions { LifecycleObserver = probe.Observe });

        await region.TellAsync("x", new LedgerCommand.Append(1), Ct);
        await region.TellAsync("x", new LedgerCommand.Append(2), Ct);

        // The shard dead-letters a message right after reporting the stop; the second stop orders the first letter.
        await probe.WaitFor("x", EntityLifecycle.Stopped, 2);
        var letter = region.DeadLetters.Recent()[0];
        Assert.Equal(new LedgerCommand.Append(1), letter.Message);
        Assert.Contains("no journal", letter.Error!.Message, StringComparison.Ordinal);
    }
}
