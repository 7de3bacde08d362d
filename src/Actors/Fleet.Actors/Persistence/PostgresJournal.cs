using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace Fleet.Actors.Persistence;

/// <summary>Settings of a <see cref="PostgresJournal"/>.</summary>
public sealed class PostgresJournalOptions
{
    /// <summary>Npgsql connection string.</summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>Writes that may wait for the writer loop; <see cref="IJournal.EnqueueAsync"/> waits beyond that.</summary>
    public int QueueCapacity { get; set; } = 16_384;

    /// <summary>Most writes per transaction.</summary>
    public int MaxBatchSize { get; set; } = 4096;
}

/// <summary>
/// The shared-deployment journal: PostgreSQL through Npgsql, one writer loop that sends each batch as one
/// transaction with all its events in a single <c>unnest</c> insert.
/// </summary>
/// <remarks>Thread-safe. Reads use pooled connections from the data source.</remarks>
public sealed class PostgresJournal : BatchingJournal
{
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS fleet_journal (
            persistence_id text NOT NULL,
            sequence_nr bigint NOT NULL,
            payload bytea NOT NULL,
            PRIMARY KEY (persistence_id, sequence_nr));
        CREATE TABLE IF NOT EXISTS fleet_snapshots (
            persistence_id text NOT NULL PRIMARY KEY,
            sequence_nr bigint NOT NULL,
            payload bytea NOT NULL);
        CREATE TABLE IF NOT EXISTS fleet_remembered (
            region text NOT NULL,
            entity_id text NOT NULL,
            PRIMARY KEY (region, entity_id));
        """;

    private readonly NpgsqlDataSource _dataSource;

    private PostgresJournal(PostgresJournalOptions options, NpgsqlDataSource dataSource, ILogger? logger)
        : base("postgres", options.QueueCapacity, options.MaxBatchSize, logger)
    {
        _dataSource = dataSource;
        StartWriter();
    }

    /// <summary>Connects, creates the tables when missing and starts the writer loop.</summary>
    public static async Task<PostgresJournal> OpenAsync(PostgresJournalOptions options, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.ConnectionString);
        var dataSource = NpgsqlDataSource.Create(options.ConnectionString);
        try
        {
            await using (var command = dataSource.CreateCommand(Schema))
            {
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            return new PostgresJournal(options, dataSource, logger);
        }
        catch
        {
            await dataSource.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <inheritdoc />
    protected override async ValueTask WriteBatchAsync(IReadOnlyList<JournalWrite> batch)
    {
        var ids = new List<string>();
        var sequenceNrs = new List<long>();
        var payloads = new List<byte[]>();
        await using var connection = await _dataSource.OpenConnectionAsync().ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
        await using var commands = new NpgsqlBatch(connection, transaction);
        foreach (var write in batch)
        {
            switch (write)
            {
                case AppendEvents append:
                    for (var i = 0; i < append.Payloads.Count; i++)
                    {
                        ids.Add(append.PersistenceId);
                        sequenceNrs.Add(append.FirstSequenceNr + i);
                        payloads.Add(append.Payloads[i]);
                    }

                    break;
                case SaveSnapshot snapshot:
                    // One statement per snapshot: an upsert may not touch one row twice in a single statement.
                    var upsert = new NpgsqlBatchCommand("""
                        INSERT INTO fleet_snapshots (persistence_id, sequence_nr, payload) VALUES ($1, $2, $3)
                        ON CONFLICT (persistence_id) DO UPDATE SET sequence_nr = excluded.sequence_nr, payload = excluded.payload
                        WHERE excluded.sequence_nr >= fleet_snapshots.sequence_nr
                        """);
                    upsert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = snapshot.PersistenceId });
                    upsert.Parameters.Add(new NpgsqlParameter<long> { TypedValue = snapshot.SequenceNr });
                    upsert.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = snapshot.Payload });
                    commands.BatchCommands.Add(upsert);
                    break;
                case RememberEntity remember:
                    var sql = remember.Active
                        ? "INSERT INTO fleet_remembered (region, entity_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
                        : "DELETE FROM fleet_remembered WHERE region = $1 AND entity_id = $2";
                    var command = new NpgsqlBatchCommand(sql);
                    command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = remember.Region });
                    command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = remember.EntityId });
                    commands.BatchCommands.Add(command);
                    break;
            }
        }

        if (ids.Count > 0)
        {
            // Events first, so a snapshot in the same batch never lands without its events.
            var insert = new NpgsqlBatchCommand(
                "INSERT INTO fleet_journal (persistence_id, sequence_nr, payload) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])");
            insert.Parameters.Add(new NpgsqlParameter { Value = ids.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            insert.Parameters.Add(new NpgsqlParameter { Value = sequenceNrs.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
            insert.Parameters.Add(new NpgsqlParameter { Value = payloads.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
            commands.BatchCommands.Insert(0, insert);
        }

        if (commands.BatchCommands.Count > 0)
        {
            await commands.ExecuteNonQueryAsync().ConfigureAwait(false);
        }

        await transaction.CommitAsync().ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override async ValueTask<SnapshotRecord?> LoadSnapshotAsync(string persistenceId, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand("SELECT sequence_nr, payload FROM fleet_snapshots WHERE persistence_id = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = persistenceId });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
            ? new SnapshotRecord(reader.GetInt64(0), reader.GetFieldValue<byte[]>(1))
            : null;
    }

    /// <inheritdoc />
    public override async ValueTask<long> ReplayAsync(string persistenceId, long fromSequenceNr, IReplayTarget target, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        await using var command = _dataSource.CreateCommand(
            "SELECT sequence_nr, payload FROM fleet_journal WHERE persistence_id = $1 AND sequence_nr >= $2 ORDER BY sequence_nr");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = persistenceId });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = fromSequenceNr });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        long highest = 0;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            highest = reader.GetInt64(0);
            target.OnReplayed(highest, reader.GetFieldValue<byte[]>(1));
        }

        return highest;
    }

    /// <inheritdoc />
    public override async ValueTask<long> ReadHighestSequenceNrAsync(string persistenceId, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand("SELECT COALESCE(MAX(sequence_nr), 0) FROM fleet_journal WHERE persistence_id = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = persistenceId });
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    /// <inheritdoc />
    public override async ValueTask<IReadOnlyList<string>> ReadRememberedAsync(string region, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand("SELECT entity_id FROM fleet_remembered WHERE region = $1 ORDER BY entity_id");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = region });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var ids = new List<string>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            ids.Add(reader.GetString(0));
        }

        return ids;
    }

    /// <inheritdoc />
    protected override ValueTask DisposeStoreAsync() => _dataSource.DisposeAsync();
}
