using System.Collections.Concurrent;
using System.Text;
using Fleet.Actors.Persistence;

namespace Fleet.Actors.Tests;

/// <summary>
/// The contract every journal meets (after Akka's persistence TCK): run against in-memory, SQLite and PostgreSQL
/// by subclasses that only say how to open a journal.
/// </summary>
/// <remarks>Each test uses ids unique to the test instance, so a subclass may share one store between tests.</remarks>
public abstract class JournalContractTests : IAsyncLifetime
{
    private readonly string _run = Guid.NewGuid().ToString("N")[..8];
    private IJournal? _journal;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected IJournal Journal => _journal!;

    /// <summary>Opens a journal on the store (a second call opens the same store again).</summary>
    protected abstract Task<IJournal> OpenAsync();

    public async ValueTask InitializeAsync() => _journal = await OpenAsync();

    public async ValueTask DisposeAsync()
    {
        if (_journal is not null)
        {
            await _journal.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }

    private string Id(string name) => $"{_run}/{name}";

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    private static AppendEvents Events(string id, long first, params string[] payloads) =>
        new(id, first, payloads.Select(Bytes).ToArray());

    private async Task<List<(long Seq, string Text)>> ReplayAllAsync(string id, long from = 1)
    {
        var collector = new ReplayCollector();
        await Journal.ReplayAsync(id, from, collector, Ct);
        return collector.Events.Select(e => (e.SequenceNr, Encoding.UTF8.GetString(e.Payload))).ToList();
    }

    [Fact]
    public virtual async Task Append_ThenReplay_ReturnsEveryEventInOrder()
    {
        var id = Id("a");
        await Journal.WriteAsync(Events(id, 1, "one"), Ct);
        await Journal.WriteAsync(Events(id, 2, "two", "three"), Ct);
        await Journal.WriteAsync(Events(id, 4, "four"), Ct);

        Assert.Equal([(1L, "one"), (2L, "two"), (3L, "three"), (4L, "four")], await ReplayAllAsync(id));
    }

    [Fact]
    public virtual async Task Replay_FromSequenceNr_SkipsEarlierEventsAndReturnsHighest()
    {
        var id = Id("a");
        await Journal.WriteAsync(Events(id, 1, "1", "2", "3", "4", "5"), Ct);

        var collector = new ReplayCollector();
        var highest = await Journal.ReplayAsync(id, 4, collector, Ct);

        Assert.Equal(5, highest);
        Assert.Equal([4L, 5L], collector.Events.Select(e => e.SequenceNr));
    }

    [Fact]
    public virtual async Task Replay_UnknownEntity_ReturnsZeroAndNoEvents()
    {
        var collector = new ReplayCollector();
        Assert.Equal(0, await Journal.ReplayAsync(Id("nobody"), 1, collector, Ct));
        Assert.Empty(collector.Events);
        Assert.Equal(0, await Journal.ReadHighestSequenceNrAsync(Id("nobody"), Ct));
    }

    [Fact]
    public virtual async Task Append_ExistingSequenceNr_FailsThatWriteOnlyAndKeepsOriginal()
    {
        var a = Id("a");
        var b = Id("b");
        await Journal.WriteAsync(Events(a, 1, "original"), Ct);

        // Queued together so a batching journal puts them into one transaction.
        var duplicate = Journal.WriteAsync(Events(a, 1, "impostor"), Ct);
        var innocent = Journal.WriteAsync(Events(b, 1, "fine"), Ct);

        await Assert.ThrowsAnyAsync<Exception>(() => duplicate);
        await innocent;
        Assert.Equal([(1L, "original")], await ReplayAllAsync(a));
        Assert.Equal([(1L, "fine")], await ReplayAllAsync(b));
    }

    [Fact]
    public virtual async Task ReadHighestSequenceNr_AfterAppends_ReturnsLast()
    {
        var id = Id("a");
        await Journal.WriteAsync(Events(id, 1, "x", "y"), Ct);
        await Journal.WriteAsync(Events(id, 3, "z"), Ct);

        Assert.Equal(3, await Journal.ReadHighestSequenceNrAsync(id, Ct));
    }

    [Fact]
    public virtual async Task Snapshot_SavedTwice_LoadReturnsLatest()
    {
        var id = Id("a");
        Assert.Null(await Journal.LoadSnapshotAsync(id, Ct));

        await Journal.WriteAsync(new SaveSnapshot(id, 10, Bytes("ten")), Ct);
        await Journal.WriteAsync(new SaveSnapshot(id, 20, Bytes("twenty")), Ct);

        var snapshot = await Journal.LoadSnapshotAsync(id, Ct);
        Assert.NotNull(snapshot);
        Assert.Equal(20, snapshot.SequenceNr);
        Assert.Equal("twenty", Encoding.UTF8.GetString(snapshot.Payload));
    }

    [Fact]
    public virtual async Task Remember_AddAndRemove_ReadReturnsTheActiveOnes()
    {
        var region = Id("region");
        await Journal.WriteAsync(new RememberEntity(region, "x", active: true), Ct);
        await Journal.WriteAsync(new RememberEntity(region, "y", active: true), Ct);
        await Journal.WriteAsync(new RememberEntity(region, "y", active: true), Ct);
        await Journal.WriteAsync(new RememberEntity(region, "z", active: true), Ct);
        await Journal.WriteAsync(new RememberEntity(region, "x", active: false), Ct);

        Assert.Equal(["y", "z"], (await Journal.ReadRememberedAsync(region, Ct)).Order(StringComparer.Ordinal));
        Assert.Empty(await Journal.ReadRememberedAsync(Id("other"), Ct));
    }

    [Fact]
    public virtual async Task Append_ManyEntitiesConcurrently_EveryEventStoredInOrder()
    {
        const int Entities = 40, PerEntity = 25;
        await Task.WhenAll(Enumerable.Range(0, Entities).Select(e => Task.Run(async () =>
        {
            for (var i = 1; i <= PerEntity; i++)
            {
                await Journal.WriteAsync(Events(Id($"e{e}"), i, $"{e}:{i}"), Ct);
            }
        }, Ct)));

        for (var e = 0; e < Entities; e++)
        {
            var expected = Enumerable.Range(1, PerEntity).Select(i => ((long)i, $"{e}:{i}"));
            Assert.Equal(expected, await ReplayAllAsync(Id($"e{e}")));
        }
    }

    [Fact]
    public virtual async Task Writes_QueuedTogether_CompleteInQueueOrder()
    {
        var order = new ConcurrentQueue<int>();
        var tasks = new List<Task>();
        for (var i = 0; i < 200; i++)
        {
            var n = i;
            tasks.Add(Journal.WriteAsync(Events(Id($"o{i % 7}"), (i / 7) + 1, $"{i}"), Ct).ContinueWith(_ => order.Enqueue(n), Ct, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default));
        }

        await Task.WhenAll(tasks);
        Assert.Equal(Enumerable.Range(0, 200), order.Order());
        Assert.All(tasks, t => Assert.True(t.IsCompletedSuccessfully));
    }

    [Fact]
    public virtual async Task Flush_AfterQueuedWrites_CompletesWhenAllAreDurable()
    {
        var observer = new CountingObserver();
        for (var i = 1; i <= 300; i++)
        {
            await Journal.EnqueueAsync(new AppendEvents(Id("f"), i, [Bytes($"{i}")]) { Observer = observer }, Ct);
        }

        await Journal.FlushAsync(Ct);

        Assert.Equal(300, observer.Succeeded);
        Assert.Equal(300, await Journal.ReadHighestSequenceNrAsync(Id("f"), Ct));
    }

    [Fact]
    public virtual async Task Metrics_AfterWrites_CountEventsAndBatches()
    {
        var before = Journal.GetMetrics();
        await Journal.WriteAsync(Events(Id("m"), 1, "a", "b", "c"), Ct);
        await Journal.WriteAsync(Events(Id("m"), 4, "d"), Ct);

        var after = Journal.GetMetrics();
        Assert.Equal(4, after.Events - before.Events);
        Assert.Equal(2, after.Writes - before.Writes);
        Assert.True(after.Batches > before.Batches);
        Assert.True(after.AverageBatchSize >= 1);
    }

    [Fact]
    public virtual async Task Reopen_AfterDispose_EverythingIsStillThere()
    {
        var id = Id("durable");
        await Journal.WriteAsync(Events(id, 1, "kept"), Ct);
        await Journal.WriteAsync(new SaveSnapshot(id, 1, Bytes("state")), Ct);
        await Journal.WriteAsync(new RememberEntity(Id("region"), "durable", active: true), Ct);

        await using var reopened = await ReopenAsync();
        var collector = new ReplayCollector();
        await reopened.ReplayAsync(id, 1, collector, Ct);

        Assert.Equal("kept", Encoding.UTF8.GetString(Assert.Single(collector.Events).Payload));
        Assert.Equal("state", Encoding.UTF8.GetString((await reopened.LoadSnapshotAsync(id, Ct))!.Payload));
        Assert.Equal(["durable"], await reopened.ReadRememberedAsync(Id("region"), Ct));
    }

    [Fact]
    public virtual async Task Recover_ManyTargets_EachGetsItsSnapshotThenLaterEvents()
    {
        await Journal.WriteAsync(Events(Id("snap"), 1, "1", "2", "3", "4", "5"), Ct);
        await Journal.WriteAsync(new SaveSnapshot(Id("snap"), 3, Bytes("s3")), Ct);
        await Journal.WriteAsync(Events(Id("plain"), 1, "a", "b"), Ct);
        RecoveryCollector[] targets = [new(Id("snap")), new(Id("plain")), new(Id("nobody"))];

        await Journal.RecoverAsync(targets, Ct);

        Assert.Equal("s3", targets[0].Snapshot);
        Assert.Equal([(4L, "4"), (5L, "5")], targets[0].Events);
        Assert.Null(targets[1].Snapshot);
        Assert.Equal([(1L, "a"), (2L, "b")], targets[1].Events);
        Assert.Empty(targets[2].Events);
        Assert.All(targets, t => Assert.Equal(1, t.Completions));
        Assert.All(targets, t => Assert.Null(t.Error));
    }

    [Fact]
    public virtual async Task Recover_OneTargetThrows_OnlyThatOneFails()
    {
        await Journal.WriteAsync(Events(Id("bad"), 1, "x"), Ct);
        await Journal.WriteAsync(Events(Id("good"), 1, "y"), Ct);
        RecoveryCollector[] targets = [new(Id("bad")) { ThrowOnEvent = true }, new(Id("good"))];

        await Journal.RecoverAsync(targets, Ct);

        Assert.IsType<InvalidDataException>(targets[0].Error);
        Assert.Null(targets[1].Error);
        Assert.Equal([(1L, "y")], targets[1].Events);
        Assert.All(targets, t => Assert.Equal(1, t.Completions));
    }

    /// <summary>Disposes the current journal and opens the store again; returns the new journal.</summary>
    protected virtual async Task<IJournal> ReopenAsync()
    {
        await _journal!.DisposeAsync();
        _journal = null;
        return await OpenAsync();
    }

    private sealed class RecoveryCollector(string persistenceId) : IRecoveryTarget
    {
        public string PersistenceId { get; } = persistenceId;

        public long RecoveredSequenceNr { get; private set; }

        public bool ThrowOnEvent { get; init; }

        public string? Snapshot { get; private set; }

        public List<(long, string)> Events { get; } = [];

        public int Completions { get; private set; }

        public Exception? Error { get; private set; }

        public void OnSnapshot(SnapshotRecord snapshot)
        {
            Snapshot = Encoding.UTF8.GetString(snapshot.Payload);
            RecoveredSequenceNr = snapshot.SequenceNr;
        }

        public void OnReplayed(long sequenceNr, ReadOnlySpan<byte> payload)
        {
            if (ThrowOnEvent)
            {
                throw new InvalidDataException("injected: event cannot be read");
            }

            Events.Add((sequenceNr, Encoding.UTF8.GetString(payload)));
            RecoveredSequenceNr = sequenceNr;
        }

        public void OnRecoveryCompleted(Exception? error)
        {
            Completions++;
            Error = error;
        }
    }

    private sealed class CountingObserver : IJournalWriteObserver
    {
        private int _succeeded;

        public int Succeeded => Volatile.Read(ref _succeeded);

        public void OnWriteCompleted(JournalWrite write, Exception? error)
        {
            if (error is null)
            {
                Interlocked.Increment(ref _succeeded);
            }
        }
    }
}

public sealed class InMemoryJournalContractTests : JournalContractTests
{
    private readonly InMemoryJournal _store = new();

    protected override Task<IJournal> OpenAsync() => Task.FromResult<IJournal>(_store);

    // The in-memory store lives as long as the object: "reopening" is looking at it again.
    protected override Task<IJournal> ReopenAsync() => Task.FromResult<IJournal>(new NonDisposing(_store));

    private sealed class NonDisposing(IJournal inner) : IJournal
    {
        public ValueTask EnqueueAsync(JournalWrite write, CancellationToken cancellationToken = default) => inner.EnqueueAsync(write, cancellationToken);

        public ValueTask<SnapshotRecord?> LoadSnapshotAsync(string persistenceId, CancellationToken cancellationToken = default) => inner.LoadSnapshotAsync(persistenceId, cancellationToken);

        public ValueTask<long> ReplayAsync(string persistenceId, long fromSequenceNr, IReplayTarget target, CancellationToken cancellationToken = default) =>
            inner.ReplayAsync(persistenceId, fromSequenceNr, target, cancellationToken);

        public ValueTask<long> ReadHighestSequenceNrAsync(string persistenceId, CancellationToken cancellationToken = default) => inner.ReadHighestSequenceNrAsync(persistenceId, cancellationToken);

        public ValueTask<IReadOnlyList<string>> ReadRememberedAsync(string region, CancellationToken cancellationToken = default) => inner.ReadRememberedAsync(region, cancellationToken);

        public Task FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

        public JournalMetrics GetMetrics() => inner.GetMetrics();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

[Trait("Category", "Integration")]
public sealed class SqliteJournalContractTests : JournalContractTests, IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("fleet-journal-");

    protected override Task<IJournal> OpenAsync() =>
        Task.FromResult<IJournal>(new SqliteJournal(new SqliteJournalOptions { Path = Path.Combine(_dir.FullName, "journal.db") }));

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Delete(recursive: true);
    }

    [Fact]
    public async Task Open_NewFile_UsesWriteAheadLog()
    {
        await Journal.FlushAsync(Ct);
        Assert.True(File.Exists(Path.Combine(_dir.FullName, "journal.db-wal")), "journal.db-wal missing: WAL mode is off");
    }

    [Fact]
    public async Task Append_NewEntityInRolledBackBatch_KeyIsRecreatedAndLaterWritesSurviveReopen()
    {
        // The writer caches entity keys; a key created by a batch that rolls back must not stay cached.
        await Journal.WriteAsync(new AppendEvents("a", 1, [[1]]), Ct);
        var duplicate = Journal.WriteAsync(new AppendEvents("a", 1, [[9]]), Ct);
        var fresh = Journal.WriteAsync(new AppendEvents("fresh", 1, [[2]]), Ct);
        await Assert.ThrowsAnyAsync<Exception>(() => duplicate);
        await fresh;
        await Journal.WriteAsync(new AppendEvents("fresh", 2, [[3]]), Ct);

        await using var reopened = await ReopenAsync();
        var collector = new ReplayCollector();
        Assert.Equal(2, await reopened.ReplayAsync("fresh", 1, collector, Ct));
        Assert.Equal([(1L, (byte)2), (2L, (byte)3)], collector.Events.Select(e => (e.SequenceNr, e.Payload.Single())));
    }

    [Fact]
    public async Task Open_DatabaseOfFirstSchema_MigratesEveryEvent()
    {
        // The first schema kept the persistence id in every event row (table fleet_journal).
        var path = Path.Combine(_dir.FullName, "v1.db");
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = """
                CREATE TABLE fleet_journal (persistence_id TEXT NOT NULL, sequence_nr INTEGER NOT NULL, payload BLOB NOT NULL,
                    PRIMARY KEY (persistence_id, sequence_nr)) WITHOUT ROWID;
                INSERT INTO fleet_journal VALUES ('r/x', 1, x'01'), ('r/x', 2, x'02'), ('r/y', 1, x'03');
                """;
            command.ExecuteNonQuery();
        }

        await using var journal = new SqliteJournal(new SqliteJournalOptions { Path = path });
        var x = new ReplayCollector();
        var y = new ReplayCollector();
        await journal.ReplayAsync("r/x", 1, x, Ct);
        await journal.ReplayAsync("r/y", 1, y, Ct);
        await journal.WriteAsync(new AppendEvents("r/x", 3, [[4]]), Ct);

        Assert.Equal([(1L, (byte)1), (2L, (byte)2)], x.Events.Select(e => (e.SequenceNr, e.Payload.Single())));
        Assert.Equal([(1L, (byte)3)], y.Events.Select(e => (e.SequenceNr, e.Payload.Single())));
        Assert.Equal(3, await journal.ReadHighestSequenceNrAsync("r/x", Ct));
    }
}

[Trait("Category", "Integration")]
public sealed class PostgresJournalContractTests(PostgresFixture postgres) : JournalContractTests, IClassFixture<PostgresFixture>
{
    protected override async Task<IJournal> OpenAsync() =>
        await PostgresJournal.OpenAsync(new PostgresJournalOptions { ConnectionString = postgres.Server.ConnectionString }, cancellationToken: Ct);
}
