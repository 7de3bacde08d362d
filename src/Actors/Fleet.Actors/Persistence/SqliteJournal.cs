using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using SQLitePCL;

namespace Fleet.Actors.Persistence;

/// <summary>Settings of a <see cref="SqliteJournal"/>.</summary>
public sealed class SqliteJournalOptions
{
    /// <summary>The database file (created with its folder when missing).</summary>
    public string Path { get; set; } = ".fleet/journal.db";

    /// <summary>Writes that may wait for the writer loop; <see cref="IJournal.EnqueueAsync"/> waits beyond that.</summary>
    public int QueueCapacity { get; set; } = 16_384;

    /// <summary>Most writes per transaction.</summary>
    public int MaxBatchSize { get; set; } = 16_384;

    /// <summary>
    /// <c>synchronous=FULL</c> (survives power loss) instead of <c>NORMAL</c> (WAL: survives a process crash,
    /// may lose the last transactions on power loss).
    /// </summary>
    public bool SynchronousFull { get; set; }

    /// <summary>Connections kept open for reads (recovery runs this many replays at once).</summary>
    public int ReadConnections { get; set; } = Math.Max(2, Environment.ProcessorCount);

    /// <summary>SQLite page cache of the write connection, in KiB (<c>PRAGMA cache_size</c>).</summary>
    /// <remarks>
    /// Writes of many entities land on pages all over the event index; pages that have to be read back from the
    /// file for every batch cost more than the inserts, so the default keeps the hot part of the index in memory.
    /// </remarks>
    public int WriteCacheKiB { get; set; } = 64 * 1024;

    /// <summary>
    /// WAL size, in pages, at which a commit checkpoints the log into the database (<c>PRAGMA wal_autocheckpoint</c>).
    /// </summary>
    /// <remarks>
    /// A checkpoint copies every page changed since the last one and syncs the file; a page changed by many
    /// batches is copied once, so a longer interval means less work per event (at the cost of a larger -wal file).
    /// </remarks>
    public int CheckpointPages { get; set; } = 16_384;
}

/// <summary>
/// The embedded default journal: SQLite in WAL mode, one writer loop that puts the events of many entities
/// into one transaction, readers on their own connections.
/// </summary>
/// <remarks>
/// <para>Events are keyed by a small integer per persistence id (<c>fleet_entities</c>), so an event row is a
/// few bytes of key plus its payload: the index pages a batch touches are few and dense. The writer caches the
/// keys it has seen. The hot statements (insert, replay) use SQLite's prepared-statement API directly: no data
/// reader, no boxing, payloads bound and read as spans.</para>
/// <para>Thread-safe. One process per database file: SQLite allows a single writer.</para>
/// </remarks>
public sealed class SqliteJournal : BatchingJournal
{
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS fleet_entities (
            entity_key INTEGER PRIMARY KEY,
            persistence_id TEXT NOT NULL UNIQUE);
        CREATE TABLE IF NOT EXISTS fleet_events (
            entity_key INTEGER NOT NULL,
            sequence_nr INTEGER NOT NULL,
            payload BLOB NOT NULL,
            PRIMARY KEY (entity_key, sequence_nr)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS fleet_snapshots (
            persistence_id TEXT NOT NULL PRIMARY KEY,
            sequence_nr INTEGER NOT NULL,
            payload BLOB NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS fleet_remembered (
            region TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            PRIMARY KEY (region, entity_id)) WITHOUT ROWID;
        """;

    /// <summary>Moves events of the first schema (text key per row) into the keyed tables, once.</summary>
    private const string MigrateV1 = """
        INSERT OR IGNORE INTO fleet_entities (persistence_id) SELECT DISTINCT persistence_id FROM fleet_journal;
        INSERT INTO fleet_events (entity_key, sequence_nr, payload)
            SELECT e.entity_key, j.sequence_nr, j.payload FROM fleet_journal j JOIN fleet_entities e ON e.persistence_id = j.persistence_id;
        DROP TABLE fleet_journal;
        """;

    private const string KeyOf = "SELECT entity_key FROM fleet_entities WHERE persistence_id = ?1";

    /// <summary>Most persistence ids whose keys the writer keeps in memory; the cache starts over beyond that.</summary>
    private const int MaxCachedKeys = 1_000_000;

    private readonly string _connectionString;
    private readonly SqliteConnection _writeConnection;
    private readonly sqlite3_stmt _insertEvent;
    private readonly sqlite3_stmt _selectKey;
    private readonly sqlite3_stmt _insertKey;
    private readonly SqliteCommand _upsertSnapshot;
    private readonly SqliteCommand _remember;
    private readonly SqliteCommand _forget;
    private readonly Dictionary<string, long> _keys = new(StringComparer.Ordinal);
    private readonly List<string> _keysAddedInTransaction = [];
    private readonly List<EventRow> _rows = [];
    private readonly ConcurrentBag<ReadSession> _sessions = [];
    private readonly SemaphoreSlim _readers;

    /// <summary>Opens (or creates) the database and starts the writer loop.</summary>
    public SqliteJournal(SqliteJournalOptions options, ILogger? logger = null)
        : base("sqlite", options?.QueueCapacity ?? 1, options?.MaxBatchSize ?? 1, logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Path);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.ReadConnections);
        ArgumentOutOfRangeException.ThrowIfNegative(options.WriteCacheKiB);
        ArgumentOutOfRangeException.ThrowIfNegative(options.CheckpointPages);
        var full = System.IO.Path.GetFullPath(options.Path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = full,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
            DefaultTimeout = 30,
        }.ToString();
        _readers = new SemaphoreSlim(options.ReadConnections);

        _writeConnection = Open();
        Execute(_writeConnection, string.Create(CultureInfo.InvariantCulture, $"""
            PRAGMA journal_mode=WAL;
            PRAGMA synchronous={(options.SynchronousFull ? "FULL" : "NORMAL")};
            PRAGMA cache_size=-{options.WriteCacheKiB};
            PRAGMA wal_autocheckpoint={options.CheckpointPages};
            """));
        // Schema and the one-time migration in one transaction: a crash leaves either schema, never half of both.
        Execute(_writeConnection, "BEGIN IMMEDIATE;");
        try
        {
            Execute(_writeConnection, Schema);
            if (TableExists(_writeConnection, "fleet_journal"))
            {
                Execute(_writeConnection, MigrateV1);
            }

            Execute(_writeConnection, "COMMIT;");
        }
        catch
        {
            Execute(_writeConnection, "ROLLBACK;");
            throw;
        }

        _insertEvent = PrepareRaw(_writeConnection, "INSERT INTO fleet_events (entity_key, sequence_nr, payload) VALUES (?1, ?2, ?3)");
        _selectKey = PrepareRaw(_writeConnection, KeyOf);
        _insertKey = PrepareRaw(_writeConnection, "INSERT INTO fleet_entities (persistence_id) VALUES (?1)");
        _upsertSnapshot = Prepare(_writeConnection, """
            INSERT INTO fleet_snapshots (persistence_id, sequence_nr, payload) VALUES ($id, $seq, $payload)
            ON CONFLICT (persistence_id) DO UPDATE SET sequence_nr = excluded.sequence_nr, payload = excluded.payload
            WHERE excluded.sequence_nr >= fleet_snapshots.sequence_nr
            """, "$id", "$seq", "$payload");
        _remember = Prepare(_writeConnection, "INSERT OR IGNORE INTO fleet_remembered (region, entity_id) VALUES ($region, $entity)", "$region", "$entity");
        _forget = Prepare(_writeConnection, "DELETE FROM fleet_remembered WHERE region = $region AND entity_id = $entity", "$region", "$entity");
        StartWriter();
    }

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        Execute(connection, "PRAGMA busy_timeout=30000;");
        return connection;
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static bool TableExists(SqliteConnection connection, string table)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $name";
        command.Parameters.AddWithValue("$name", table);
        return (long)command.ExecuteScalar()! > 0;
    }

    private static SqliteCommand Prepare(SqliteConnection connection, string sql, params string[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var name in parameters)
        {
            command.Parameters.Add(new SqliteParameter { ParameterName = name });
        }

        command.Prepare();
        return command;
    }

    private static sqlite3_stmt PrepareRaw(SqliteConnection connection, string sql)
    {
        var rc = raw.sqlite3_prepare_v2(connection.Handle, sql, out var statement);
        SqliteException.ThrowExceptionForRC(rc, connection.Handle);
        return statement;
    }

    /// <inheritdoc />
    protected override ValueTask WriteBatchAsync(IReadOnlyList<JournalWrite> batch)
    {
        // SQLite is synchronous; the writer loop runs on its own pool thread, so blocking here blocks no shard.
        using var transaction = _writeConnection.BeginTransaction(deferred: false);
        _upsertSnapshot.Transaction = transaction;
        _remember.Transaction = transaction;
        _forget.Transaction = transaction;
        _keysAddedInTransaction.Clear();
        _rows.Clear();
        try
        {
            for (var w = 0; w < batch.Count; w++)
            {
                switch (batch[w])
                {
                    case AppendEvents append:
                        var key = KeyFor(append.PersistenceId);
                        var payloads = append.Payloads;
                        for (var i = 0; i < payloads.Count; i++)
                        {
                            _rows.Add(new EventRow(key, append.FirstSequenceNr + i, payloads[i], append.PersistenceId));
                        }

                        break;
                    case SaveSnapshot snapshot:
                        _upsertSnapshot.Parameters[0].Value = snapshot.PersistenceId;
                        _upsertSnapshot.Parameters[1].Value = snapshot.SequenceNr;
                        _upsertSnapshot.Parameters[2].Value = snapshot.Payload;
                        _upsertSnapshot.ExecuteNonQuery();
                        break;
                    case RememberEntity remember:
                        var command = remember.Active ? _remember : _forget;
                        command.Parameters[0].Value = remember.Region;
                        command.Parameters[1].Value = remember.EntityId;
                        command.ExecuteNonQuery();
                        break;
                }
            }

            // In key order, the inserts walk the index from left to right: each page is found from the previous
            // one's neighbourhood and written once, instead of the batch jumping between pages in arrival order.
            _rows.Sort(static (a, b) => a.Key != b.Key ? a.Key.CompareTo(b.Key) : a.SequenceNr.CompareTo(b.SequenceNr));
            foreach (var row in _rows)
            {
                InsertEvent(row.Key, row.PersistenceId, row.SequenceNr, row.Payload);
            }

            transaction.Commit();
        }
        catch
        {
            // The transaction rolls back: keys it created do not exist, so they must not stay cached.
            foreach (var id in _keysAddedInTransaction)
            {
                _keys.Remove(id);
            }

            throw;
        }
        finally
        {
            _rows.Clear();
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>One event of a batch, waiting to be inserted in key order.</summary>
    private readonly record struct EventRow(long Key, long SequenceNr, byte[] Payload, string PersistenceId);

    /// <summary>The integer key of a persistence id, created inside the current transaction when new.</summary>
    private long KeyFor(string persistenceId)
    {
        if (_keys.TryGetValue(persistenceId, out var key))
        {
            return key;
        }

        var handle = _writeConnection.Handle;
        raw.sqlite3_bind_text(_selectKey, 1, persistenceId);
        var rc = raw.sqlite3_step(_selectKey);
        if (rc == raw.SQLITE_ROW)
        {
            key = raw.sqlite3_column_int64(_selectKey, 0);
            raw.sqlite3_reset(_selectKey);
        }
        else
        {
            raw.sqlite3_reset(_selectKey);
            ThrowIfNot(rc, raw.SQLITE_DONE, $"lookup of '{persistenceId}'");
            raw.sqlite3_bind_text(_insertKey, 1, persistenceId);
            rc = raw.sqlite3_step(_insertKey);
            raw.sqlite3_reset(_insertKey);
            ThrowIfNot(rc, raw.SQLITE_DONE, $"key of '{persistenceId}'");
            key = raw.sqlite3_last_insert_rowid(handle);
            _keysAddedInTransaction.Add(persistenceId);
        }

        if (_keys.Count >= MaxCachedKeys)
        {
            _keys.Clear();
        }

        _keys[persistenceId] = key;
        return key;
    }

    /// <summary>Inserts one event through the raw SQLite API on the write connection.</summary>
    /// <remarks>
    /// The hot statement bypasses <see cref="SqliteCommand"/>, whose per-execution overhead (a data reader per
    /// ExecuteNonQuery, boxed parameter values) costs more than SQLite's own insert; it runs inside the
    /// transaction the caller began on the same connection.
    /// </remarks>
    private void InsertEvent(long key, string persistenceId, long sequenceNr, byte[] payload)
    {
        var statement = _insertEvent;
        raw.sqlite3_bind_int64(statement, 1, key);
        raw.sqlite3_bind_int64(statement, 2, sequenceNr);
        raw.sqlite3_bind_blob(statement, 3, payload);
        var rc = raw.sqlite3_step(statement);
        raw.sqlite3_reset(statement);
        if (rc != raw.SQLITE_DONE)
        {
            ThrowIfNot(rc, raw.SQLITE_DONE, $"insert of event {sequenceNr} of '{persistenceId}'");
        }
    }

    private void ThrowIfNot(int rc, int expected, string what)
    {
        if (rc != expected)
        {
            throw new SqliteException($"{what} failed: {raw.sqlite3_errmsg(_writeConnection.Handle).utf8_to_string()}", rc);
        }
    }

    /// <inheritdoc />
    public override async ValueTask<SnapshotRecord?> LoadSnapshotAsync(string persistenceId, CancellationToken cancellationToken = default)
    {
        var session = await RentAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return session.LoadSnapshot(persistenceId);
        }
        finally
        {
            Return(session);
        }
    }

    /// <inheritdoc />
    public override async ValueTask<long> ReplayAsync(string persistenceId, long fromSequenceNr, IReplayTarget target, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        var session = await RentAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return session.Replay(persistenceId, fromSequenceNr, target);
        }
        finally
        {
            Return(session);
        }
    }

    /// <summary>
    /// Recovers the targets on one read connection inside one read transaction, with the snapshot and replay
    /// statements prepared once: per entity one index seek for the snapshot and one ordered range scan of its
    /// events, and no allocation per event (payloads are handed over as spans of SQLite's row buffer).
    /// </summary>
    public override async ValueTask RecoverAsync(IReadOnlyList<IRecoveryTarget> targets, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(targets);
        ReadSession session;
        try
        {
            session = await RentAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            foreach (var target in targets)
            {
                target.OnRecoveryCompleted(ex);
            }

            return;
        }

        try
        {
            session.Recover(targets);
        }
        finally
        {
            Return(session);
        }
    }

    /// <inheritdoc />
    public override async ValueTask<long> ReadHighestSequenceNrAsync(string persistenceId, CancellationToken cancellationToken = default)
    {
        var session = await RentAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return session.Highest(persistenceId);
        }
        finally
        {
            Return(session);
        }
    }

    /// <inheritdoc />
    public override async ValueTask<IReadOnlyList<string>> ReadRememberedAsync(string region, CancellationToken cancellationToken = default)
    {
        var session = await RentAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            session.Remembered.Parameters[0].Value = region;
            using var reader = session.Remembered.ExecuteReader();
            var ids = new List<string>();
            while (reader.Read())
            {
                ids.Add(reader.GetString(0));
            }

            return ids;
        }
        finally
        {
            Return(session);
        }
    }

    private async ValueTask<ReadSession> RentAsync(CancellationToken cancellationToken)
    {
        await _readers.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (_sessions.TryTake(out var session))
        {
            return session;
        }

        try
        {
            return new ReadSession(Open());
        }
        catch
        {
            _readers.Release();
            throw;
        }
    }

    private void Return(ReadSession session)
    {
        _sessions.Add(session);
        _readers.Release();
    }

    /// <inheritdoc />
    protected override ValueTask DisposeStoreAsync()
    {
        _insertEvent.Dispose();
        _selectKey.Dispose();
        _insertKey.Dispose();
        _upsertSnapshot.Dispose();
        _remember.Dispose();
        _forget.Dispose();
        _writeConnection.Dispose();
        while (_sessions.TryTake(out var session))
        {
            session.Dispose();
        }

        _readers.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>A read connection with its prepared statements; used by one reader at a time.</summary>
    private sealed class ReadSession : IDisposable
    {
        private readonly SqliteConnection _connection;
        private readonly sqlite3_stmt _snapshot;
        private readonly sqlite3_stmt _replay;
        private readonly sqlite3_stmt _highest;

        public ReadSession(SqliteConnection connection)
        {
            _connection = connection;
            _snapshot = PrepareRaw(connection, "SELECT sequence_nr, payload FROM fleet_snapshots WHERE persistence_id = ?1");
            _replay = PrepareRaw(connection, $"SELECT sequence_nr, payload FROM fleet_events WHERE entity_key = ({KeyOf}) AND sequence_nr >= ?2 ORDER BY sequence_nr");
            _highest = PrepareRaw(connection, $"SELECT COALESCE(MAX(sequence_nr), 0) FROM fleet_events WHERE entity_key = ({KeyOf})");
            Remembered = Prepare(connection, "SELECT entity_id FROM fleet_remembered WHERE region = $region ORDER BY entity_id", "$region");
        }

        public SqliteCommand Remembered { get; }

        public SnapshotRecord? LoadSnapshot(string persistenceId)
        {
            var statement = _snapshot;
            raw.sqlite3_bind_text(statement, 1, persistenceId);
            try
            {
                var rc = raw.sqlite3_step(statement);
                if (rc == raw.SQLITE_ROW)
                {
                    return new SnapshotRecord(raw.sqlite3_column_int64(statement, 0), raw.sqlite3_column_blob(statement, 1).ToArray());
                }

                Check(rc, "snapshot of", persistenceId);
                return null;
            }
            finally
            {
                raw.sqlite3_reset(statement);
            }
        }

        public long Replay(string persistenceId, long fromSequenceNr, IReplayTarget target)
        {
            var statement = _replay;
            raw.sqlite3_bind_text(statement, 1, persistenceId);
            raw.sqlite3_bind_int64(statement, 2, fromSequenceNr);
            try
            {
                long highest = 0;
                int rc;
                while ((rc = raw.sqlite3_step(statement)) == raw.SQLITE_ROW)
                {
                    highest = raw.sqlite3_column_int64(statement, 0);

                    // The span points into SQLite's row buffer, valid until the next step: no copy per event.
                    target.OnReplayed(highest, raw.sqlite3_column_blob(statement, 1));
                }

                Check(rc, "replay of", persistenceId);
                return highest;
            }
            finally
            {
                raw.sqlite3_reset(statement);
            }
        }

        public void Recover(IReadOnlyList<IRecoveryTarget> targets)
        {
            // One read transaction: every entity of the batch is read from the same consistent state, and SQLite
            // takes its read lock once instead of per statement.
            Exception? storeError = null;
            try
            {
                Execute(_connection, "BEGIN DEFERRED;");
            }
            catch (Exception ex)
            {
                storeError = ex;
            }

            try
            {
                foreach (var target in targets)
                {
                    if (storeError is not null)
                    {
                        target.OnRecoveryCompleted(storeError);
                        continue;
                    }

                    Exception? error = null;
                    try
                    {
                        var persistenceId = target.PersistenceId;
                        if (LoadSnapshot(persistenceId) is { } snapshot)
                        {
                            target.OnSnapshot(snapshot);
                        }

                        Replay(persistenceId, target.RecoveredSequenceNr + 1, target);
                    }
                    catch (Exception ex)
                    {
                        error = ex;
                    }

                    target.OnRecoveryCompleted(error);
                }
            }
            finally
            {
                if (storeError is null)
                {
                    Execute(_connection, "COMMIT;");
                }
            }
        }

        public long Highest(string persistenceId)
        {
            var statement = _highest;
            raw.sqlite3_bind_text(statement, 1, persistenceId);
            try
            {
                var rc = raw.sqlite3_step(statement);
                Check(rc == raw.SQLITE_ROW ? raw.SQLITE_DONE : rc, "highest sequence number of", persistenceId);
                return raw.sqlite3_column_int64(statement, 0);
            }
            finally
            {
                raw.sqlite3_reset(statement);
            }
        }

        private void Check(int rc, string what, string persistenceId)
        {
            if (rc != raw.SQLITE_DONE)
            {
                throw new SqliteException($"{what} '{persistenceId}' failed: {raw.sqlite3_errmsg(_connection.Handle).utf8_to_string()}", rc);
            }
        }

        public void Dispose()
        {
            _snapshot.Dispose();
            _replay.Dispose();
            _highest.Dispose();
            Remembered.Dispose();
            _connection.Dispose();
        }
    }
}
