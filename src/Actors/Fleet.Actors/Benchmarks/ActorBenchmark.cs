using System.Diagnostics;
using System.Globalization;
using Fleet.Actors.Persistence;

namespace Fleet.Actors.Benchmarks;

/// <summary>Sizes of the runtime benchmarks behind <c>fleet bench actors</c>.</summary>
public sealed class ActorBenchmarkOptions
{
    /// <summary>Entities the in-memory message run goes through.</summary>
    public int Entities { get; set; } = 100_000;

    /// <summary>Messages in the timed in-memory run.</summary>
    public int Messages { get; set; } = 20_000_000;

    /// <summary>Persistent entities in the SQLite run.</summary>
    public int PersistEntities { get; set; } = 10_000;

    /// <summary>Events persisted in the SQLite run.</summary>
    public int PersistEvents { get; set; } = 1_000_000;

    /// <summary>Entities recovered in the recovery run.</summary>
    public int RecoveryEntities { get; set; } = 10_000;

    /// <summary>Events per entity in the recovery run.</summary>
    public int RecoveryEventsPerEntity { get; set; } = 100;

    /// <summary>Idle entities created for the memory measurement.</summary>
    public int IdleEntities { get; set; } = 100_000;

    /// <summary>Which measurements run (all by default); the others report 0.</summary>
    public ActorBenchmarkMeasures Measures { get; set; } = ActorBenchmarkMeasures.All;

    /// <summary>Where the SQLite files go (a temp folder when null; deleted afterwards).</summary>
    public string? WorkDirectory { get; set; }

    /// <summary>A tenth of every size: a smoke run, not a measurement.</summary>
    public static ActorBenchmarkOptions Quick() => new()
    {
        Entities = 10_000,
        Messages = 1_000_000,
        PersistEntities = 1_000,
        PersistEvents = 50_000,
        RecoveryEntities = 1_000,
        RecoveryEventsPerEntity = 100,
        IdleEntities = 10_000,
    };
}

/// <summary>The measurements of <c>fleet bench actors</c>, to run a subset.</summary>
[Flags]
public enum ActorBenchmarkMeasures
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>In-memory messages.</summary>
    Messages = 1,

    /// <summary>Events persisted to SQLite.</summary>
    Persistence = 2,

    /// <summary>Recovery from SQLite.</summary>
    Recovery = 4,

    /// <summary>Memory per idle entity.</summary>
    Memory = 8,

    /// <summary>Every measurement.</summary>
    All = Messages | Persistence | Recovery | Memory,
}

/// <summary>What <c>fleet bench actors</c> measured.</summary>
/// <param name="MessagesPerSecond">In-memory messages through <paramref name="Entities"/> plain entities.</param>
/// <param name="Entities">Entities of the message run.</param>
/// <param name="PersistedEventsPerSecond">Events persisted to SQLite through persistent entities (persist, then apply).</param>
/// <param name="RecoverySeconds10k">Seconds to recover the recovery run's entities from SQLite (no snapshots: every event replayed).</param>
/// <param name="BytesPerIdleEntity">Managed memory per idle plain entity with no fields of its own, id string included.</param>
public sealed record ActorBenchmarkResult(
    double MessagesPerSecond,
    int Entities,
    double PersistedEventsPerSecond,
    double RecoverySeconds10k,
    double BytesPerIdleEntity);

/// <summary>The runtime benchmarks: throughput, persistence, recovery and memory.</summary>
/// <remarks>Each run builds its own region; nothing is shared between runs. Not thread-safe (one run at a time).</remarks>
public static class ActorBenchmark
{
    /// <summary>Runs all four measurements.</summary>
    public static async Task<ActorBenchmarkResult> RunAsync(ActorBenchmarkOptions options, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var work = options.WorkDirectory ?? Directory.CreateTempSubdirectory("fleet-bench-").FullName;
        Directory.CreateDirectory(work);
        try
        {
            var measures = options.Measures;
            double messages = 0, persisted = 0, recovery = 0, bytes = 0;
            if (measures.HasFlag(ActorBenchmarkMeasures.Messages))
            {
                progress?.Report($"messages: {options.Messages:N0} through {options.Entities:N0} in-memory entities");
                messages = await MessagesPerSecondAsync(options.Entities, options.Messages, progress, cancellationToken).ConfigureAwait(false);
            }

            if (measures.HasFlag(ActorBenchmarkMeasures.Persistence))
            {
                progress?.Report($"persistence: {options.PersistEvents:N0} events over {options.PersistEntities:N0} entities to SQLite");
                persisted = await PersistedEventsPerSecondAsync(Path.Combine(work, "persist.db"), options.PersistEntities, options.PersistEvents, progress, cancellationToken).ConfigureAwait(false);
            }

            if (measures.HasFlag(ActorBenchmarkMeasures.Recovery))
            {
                progress?.Report($"recovery: {options.RecoveryEntities:N0} entities x {options.RecoveryEventsPerEntity} events from SQLite");
                recovery = await RecoverySecondsAsync(Path.Combine(work, "recovery.db"), options.RecoveryEntities, options.RecoveryEventsPerEntity, progress, cancellationToken).ConfigureAwait(false);
            }

            if (measures.HasFlag(ActorBenchmarkMeasures.Memory))
            {
                progress?.Report($"memory: {options.IdleEntities:N0} idle entities");
                bytes = await BytesPerIdleEntityAsync(options.IdleEntities, cancellationToken).ConfigureAwait(false);
            }

            return new ActorBenchmarkResult(messages, options.Entities, persisted, recovery, bytes);
        }
        finally
        {
            if (options.WorkDirectory is null)
            {
                Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
                Directory.Delete(work, recursive: true);
            }
        }
    }

    /// <summary>Messages per second through <paramref name="entities"/> plain entities, one sender per core.</summary>
    public static async Task<double> MessagesPerSecondAsync(int entities, int messages, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        var region = new ShardRegion<int>("bench-messages", _ => new CountingEntity(),
            new ShardRegionOptions { ShardCount = 64, MailboxCapacity = 8192, MailboxBatchSize = 1024, PassivationIdleTimeout = TimeSpan.Zero });
        await using (region.ConfigureAwait(false))
        {
            var ids = Enumerable.Range(0, entities).Select(i => $"entity-{i}").ToArray();

            // Create every entity first: the timed run measures delivery, not creation.
            await SendAsync(region, ids, entities, cancellationToken).ConfigureAwait(false);
            await WaitProcessedAsync(region, entities, cancellationToken).ConfigureAwait(false);

            var cpuBefore = Environment.CpuUsage.TotalTime;
            var started = Stopwatch.GetTimestamp();
            await SendAsync(region, ids, messages, cancellationToken).ConfigureAwait(false);
            await WaitProcessedAsync(region, (long)entities + messages, cancellationToken).ConfigureAwait(false);
            var rate = messages / Stopwatch.GetElapsedTime(started).TotalSeconds;
            var cpu = (Environment.CpuUsage.TotalTime - cpuBefore).TotalSeconds;
            progress?.Report(string.Create(CultureInfo.InvariantCulture, $"messages: {rate:N0} msg/s ({messages / cpu:N0} per CPU-second, process CPU {cpu:N2} s)"));
            return rate;
        }
    }

    private static Task SendAsync(ShardRegion<int> region, string[] ids, int messages, CancellationToken cancellationToken)
    {
        var senders = Math.Max(1, Environment.ProcessorCount);
        var per = messages / senders;
        return Task.WhenAll(Enumerable.Range(0, senders).Select(s => Task.Run(async () =>
        {
            var count = s == senders - 1 ? messages - (per * (senders - 1)) : per;
            var index = s * 7919 % ids.Length;
            for (var i = 0; i < count; i++)
            {
                var id = ids[index];
                index = index + 1 == ids.Length ? 0 : index + 1;
                if (!region.TryTell(id, i))
                {
                    await region.TellAsync(id, i, cancellationToken).ConfigureAwait(false);
                }
            }
        }, cancellationToken)));
    }

    private static async Task WaitProcessedAsync<T>(ShardRegion<T> region, long target, CancellationToken cancellationToken)
    {
        while (region.GetMetrics().MessagesProcessed < target)
        {
            await Task.Delay(1, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Events per second persisted to SQLite by <paramref name="entities"/> persistent entities.</summary>
    public static async Task<double> PersistedEventsPerSecondAsync(string path, int entities, int events, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        var journal = new SqliteJournal(new SqliteJournalOptions { Path = path });
        await using (journal.ConfigureAwait(false))
        {
            var region = new ShardRegion<int>("bench-persist", _ => new TallyEntity(), new ShardRegionOptions { ShardCount = 64, PassivationIdleTimeout = TimeSpan.Zero, SnapshotEvery = 1000 }, journal);
            await using (region.ConfigureAwait(false))
            {
                var ids = Enumerable.Range(0, entities).Select(i => $"tally-{i}").ToArray();

                // Recover (empty) every entity first, so the timed part is persistence only.
                await SendAsync(region, ids, entities, cancellationToken).ConfigureAwait(false);
                await WaitProcessedAsync(region, entities, cancellationToken).ConfigureAwait(false);
                await WaitEventsAsync(journal, entities, cancellationToken).ConfigureAwait(false);

                var before = journal.GetMetrics().Events;
                var cpuBefore = Environment.CpuUsage.TotalTime;
                var started = Stopwatch.GetTimestamp();
                await SendAsync(region, ids, events, cancellationToken).ConfigureAwait(false);
                await WaitEventsAsync(journal, before + events, cancellationToken).ConfigureAwait(false);
                var rate = events / Stopwatch.GetElapsedTime(started).TotalSeconds;
                var cpu = (Environment.CpuUsage.TotalTime - cpuBefore).TotalSeconds;
                var m = journal.GetMetrics();
                progress?.Report(string.Create(CultureInfo.InvariantCulture,
                    $"persistence: {rate:N0} events/s ({events / cpu:N0} per CPU-second, process CPU {cpu:N2} s); journal {m.Batches:N0} transactions, {m.AverageBatchSize:N0} writes each on average (max {m.MaxBatchSize:N0}), {m.AverageLatencyMs:N1} ms per write"));
                return rate;
            }
        }
    }

    private static async Task WaitEventsAsync(BatchingJournal journal, long target, CancellationToken cancellationToken)
    {
        while (journal.GetMetrics().Events < target)
        {
            await Task.Delay(1, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Seconds until <paramref name="entities"/> entities with <paramref name="eventsPerEntity"/> events each have recovered from SQLite.</summary>
    public static async Task<double> RecoverySecondsAsync(string path, int entities, int eventsPerEntity, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        var ids = Enumerable.Range(0, entities).Select(i => $"recover-{i}").ToArray();
        var journal = new SqliteJournal(new SqliteJournalOptions { Path = path });
        await using (journal.ConfigureAwait(false))
        {
            var payloads = Enumerable.Range(1, eventsPerEntity).Select(i => JsonPersistenceSerializer<int>.Default.Serialize(i)).ToArray();
            foreach (var id in ids)
            {
                await journal.EnqueueAsync(new AppendEvents("bench-recovery/" + id, 1, payloads), cancellationToken).ConfigureAwait(false);
            }

            await journal.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        journal = new SqliteJournal(new SqliteJournalOptions { Path = path });
        await using (journal.ConfigureAwait(false))
        {
            var region = new ShardRegion<int>("bench-recovery", _ => new TallyEntity(), new ShardRegionOptions { ShardCount = 64, PassivationIdleTimeout = TimeSpan.Zero, SnapshotEvery = 0 }, journal);
            await using (region.ConfigureAwait(false))
            {
                var cpuBefore = Environment.CpuUsage.TotalTime;
                var started = Stopwatch.GetTimestamp();
                foreach (var id in ids)
                {
                    // A negative value is a no-op query: the entity answers after its recovery, persisting nothing.
                    await region.TellAsync(id, -1, cancellationToken).ConfigureAwait(false);
                }

                await WaitProcessedAsync(region, entities, cancellationToken).ConfigureAwait(false);
                var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
                var cpu = (Environment.CpuUsage.TotalTime - cpuBefore).TotalSeconds;
                progress?.Report(string.Create(CultureInfo.InvariantCulture, $"recovery: {seconds:N3} s (process CPU {cpu:N2} s)"));
                var expected = (long)eventsPerEntity * (eventsPerEntity + 1) / 2;
                if (TallyEntity.LastRecoveredTotal != expected)
                {
                    throw new InvalidOperationException($"recovery produced total {TallyEntity.LastRecoveredTotal}, expected {expected}");
                }

                return seconds;
            }
        }
    }

    /// <summary>Managed bytes per idle plain entity (no fields of its own), including its id string and map entry.</summary>
    public static async Task<double> BytesPerIdleEntityAsync(int entities, CancellationToken cancellationToken = default)
    {
        var region = new ShardRegion<int>("bench-memory", _ => new EmptyEntity(), new ShardRegionOptions { ShardCount = 64, PassivationIdleTimeout = TimeSpan.Zero });
        await using (region.ConfigureAwait(false))
        {
            // Warm the shard loops so their one-off allocations fall before the baseline.
            await region.TellAsync("warm-up", 0, cancellationToken).ConfigureAwait(false);
            await WaitProcessedAsync(region, 1, cancellationToken).ConfigureAwait(false);
            var before = GC.GetTotalMemory(forceFullCollection: true);
            for (var i = 0; i < entities; i++)
            {
                // The id is created here and owned by the entity afterwards, so it counts.
                await region.TellAsync($"idle-{i}", i, cancellationToken).ConfigureAwait(false);
            }

            await WaitProcessedAsync(region, entities + 1, cancellationToken).ConfigureAwait(false);
            var after = GC.GetTotalMemory(forceFullCollection: true);
            GC.KeepAlive(region);
            return (after - before) / (double)entities;
        }
    }

    private sealed class CountingEntity : Entity<int>
    {
        private long _sum;

        protected internal override void Receive(int message) => _sum += message;
    }

    private sealed class EmptyEntity : Entity<int>
    {
        protected internal override void Receive(int message)
        {
        }
    }

    private sealed class TallyEntity() : PersistentEntity<int, long, int>(0)
    {
        public static long LastRecoveredTotal { get; private set; }

        protected override long Apply(long state, int @event) => state + @event;

        protected internal override void Receive(int message)
        {
            if (message >= 0)
            {
                Persist(message);
            }
            else
            {
                LastRecoveredTotal = State;
            }
        }
    }
}
