using System.Diagnostics;
using System.Globalization;
using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Persistence;
using Fleet.Actors.Hosting;
using Fleet.Actors.Partitions;
using Fleet.Ingest.Events;

namespace Fleet.Actors.Benchmarks;

/// <summary>Sizes of <c>fleet bench actors</c> on Akka.NET.</summary>
public sealed record AkkaBenchmarkOptions
{
    /// <summary>Partitions (entities of the shard region).</summary>
    public int Partitions { get; init; } = 64;

    /// <summary>Vehicles spread over the partitions.</summary>
    public int Vehicles { get; init; } = 100_000;

    /// <summary>Vehicle events in the timed in-memory run.</summary>
    public int Events { get; init; } = 20_000_000;

    /// <summary>Events per batch (one message, one journal row).</summary>
    public int BatchSize { get; init; } = 1_024;

    /// <summary>Events persisted in the SQLite run.</summary>
    public int PersistEvents { get; init; } = 2_000_000;

    /// <summary>Vehicles in the recovery run.</summary>
    public int RecoveryVehicles { get; init; } = 10_000;

    /// <summary>Events per vehicle in the recovery run.</summary>
    public int RecoveryEventsPerVehicle { get; init; } = 100;

    /// <summary>Idle vehicles for the memory measurement.</summary>
    public int IdleVehicles { get; init; } = 100_000;

    /// <summary>Where the SQLite files go (a temp folder when null; deleted afterwards).</summary>
    public string? WorkDirectory { get; init; }

    /// <summary>A tenth of every size: a smoke run, not a measurement.</summary>
    public static AkkaBenchmarkOptions Quick() => new()
    {
        Vehicles = 10_000,
        Events = 1_000_000,
        PersistEvents = 100_000,
        RecoveryVehicles = 1_000,
        IdleVehicles = 10_000,
    };
}

/// <summary>What <c>fleet bench actors</c> measured on Akka.NET.</summary>
/// <param name="MessagesPerSecond">Vehicle events delivered into vehicle state through the shard region, in batches.</param>
/// <param name="Vehicles">Vehicles of the message run.</param>
/// <param name="PersistedEventsPerSecond">Vehicle events journaled to SQLite (Akka.Persistence.Sql, one row per batch), then applied.</param>
/// <param name="RecoverySeconds10k">Seconds until every partition has recovered 10,000 vehicles x 100 events from SQLite (no snapshot).</param>
/// <param name="BytesPerIdleVehicle">Managed memory per idle vehicle in a partition's state (id, map entry, state; the actors amortised).</param>
public sealed record AkkaBenchmarkResult(double MessagesPerSecond, int Vehicles, double PersistedEventsPerSecond, double RecoverySeconds10k, double BytesPerIdleVehicle);

/// <summary>
/// The actor benchmarks on Akka.NET, through the same shard region, extractor, serializer and journal as tracking:
/// partition actors whose vehicle state is a small record per vehicle, so the figures are the runtime's (messages,
/// journal, recovery, memory), not tracking's (measured by <c>fleet bench replay</c>).
/// </summary>
public static class AkkaBenchmark
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromMinutes(2);

    /// <summary>Runs the four measurements.</summary>
    public static async Task<AkkaBenchmarkResult> RunAsync(AkkaBenchmarkOptions options, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var work = options.WorkDirectory ?? Directory.CreateTempSubdirectory("fleet-bench-akka-").FullName;
        Directory.CreateDirectory(work);
        try
        {
            progress?.Report($"messages: {options.Events:N0} events of {options.Vehicles:N0} vehicles through {options.Partitions} partitions, {options.BatchSize} a batch");
            var messages = await MessagesPerSecondAsync(options, progress, cancellationToken).ConfigureAwait(false);
            progress?.Report($"persistence: {options.PersistEvents:N0} events to SQLite");
            var persisted = await PersistedEventsPerSecondAsync(options, Path.Combine(work, "persist.db"), progress, cancellationToken).ConfigureAwait(false);
            progress?.Report($"recovery: {options.RecoveryVehicles:N0} vehicles x {options.RecoveryEventsPerVehicle} events from SQLite");
            var recovery = await RecoverySecondsAsync(options, Path.Combine(work, "recovery.db"), progress, cancellationToken).ConfigureAwait(false);
            progress?.Report($"memory: {options.IdleVehicles:N0} idle vehicles");
            var bytes = await BytesPerIdleVehicleAsync(options, cancellationToken).ConfigureAwait(false);
            return new AkkaBenchmarkResult(messages, options.Vehicles, persisted, recovery, bytes);
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

    /// <summary>Events per second into vehicle state through the region, batches acknowledged, <c>2 x partitions</c> in flight.</summary>
    public static async Task<double> MessagesPerSecondAsync(AkkaBenchmarkOptions options, IProgress<string>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var (system, region) = await StartAsync(options, new FleetAkkaOptions { Partitions = options.Partitions }, persistent: false, cancellationToken).ConfigureAwait(false);
        try
        {
            var batches = Batches(options.Partitions, options.Vehicles, options.BatchSize);
            // Every vehicle once first: the timed run measures delivery, not creating the vehicles' state.
            await SendAsync(region, batches, options.Vehicles, options.Partitions * 2, cancellationToken).ConfigureAwait(false);
            var cpu0 = Environment.CpuUsage.TotalTime;
            var started = Stopwatch.GetTimestamp();
            var sent = await SendAsync(region, batches, options.Events, options.Partitions * 2, cancellationToken).ConfigureAwait(false);
            var rate = sent / Stopwatch.GetElapsedTime(started).TotalSeconds;
            var cpu = (Environment.CpuUsage.TotalTime - cpu0).TotalSeconds;
            progress?.Report(string.Create(CultureInfo.InvariantCulture, $"messages: {rate:N0} events/s ({sent / cpu:N0} per CPU-second)"));
            return rate;
        }
        finally
        {
            await system.Terminate().ConfigureAwait(false);
        }
    }

    /// <summary>Events per second journaled (one row a batch) and applied.</summary>
    public static async Task<double> PersistedEventsPerSecondAsync(AkkaBenchmarkOptions options, string path, IProgress<string>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var store = new FleetAkkaOptions { Partitions = options.Partitions, Journal = JournalKind.Sqlite, Connection = path };
        var (system, region) = await StartAsync(options, store, persistent: true, cancellationToken).ConfigureAwait(false);
        try
        {
            var batches = Batches(options.Partitions, options.Vehicles, options.BatchSize);
            await SendAsync(region, batches, options.Partitions * options.BatchSize, options.Partitions, cancellationToken).ConfigureAwait(false); // recover (empty) every partition first
            var cpu0 = Environment.CpuUsage.TotalTime;
            var started = Stopwatch.GetTimestamp();
            var sent = await SendAsync(region, batches, options.PersistEvents, options.Partitions * 2, cancellationToken).ConfigureAwait(false);
            var rate = sent / Stopwatch.GetElapsedTime(started).TotalSeconds;
            var cpu = (Environment.CpuUsage.TotalTime - cpu0).TotalSeconds;
            progress?.Report(string.Create(CultureInfo.InvariantCulture, $"persistence: {rate:N0} events/s ({sent / cpu:N0} per CPU-second; {sent / options.BatchSize:N0} journal rows)"));
            return rate;
        }
        finally
        {
            await system.Terminate().ConfigureAwait(false);
        }
    }

    /// <summary>Seconds until every partition has recovered its journal (written by a first node, read by a second).</summary>
    public static async Task<double> RecoverySecondsAsync(AkkaBenchmarkOptions options, string path, IProgress<string>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var store = new FleetAkkaOptions { Partitions = options.Partitions, Journal = JournalKind.Sqlite, Connection = path };
        var total = options.RecoveryVehicles * options.RecoveryEventsPerVehicle;
        var (system, region) = await StartAsync(options, store, persistent: true, cancellationToken).ConfigureAwait(false);
        try
        {
            await SendAsync(region, Batches(options.Partitions, options.RecoveryVehicles, options.BatchSize), total, options.Partitions * 2, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await system.Terminate().ConfigureAwait(false);
        }

        (system, region) = await StartAsync(options, store, persistent: true, cancellationToken).ConfigureAwait(false);
        try
        {
            var cpu0 = Environment.CpuUsage.TotalTime;
            var started = Stopwatch.GetTimestamp();
            var stats = await Task.WhenAll(Enumerable.Range(0, options.Partitions)
                .Select(p => region.Ask<PartitionStats>(new GetPartitionStats(p), AskTimeout, cancellationToken))).ConfigureAwait(false);
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var cpu = (Environment.CpuUsage.TotalTime - cpu0).TotalSeconds;
            var recovered = stats.Sum(s => s.Applied);
            if (recovered != total || stats.Sum(s => s.Vehicles) != options.RecoveryVehicles)
            {
                throw new InvalidOperationException($"recovery gave {recovered:N0} events of {stats.Sum(s => s.Vehicles):N0} vehicles; expected {total:N0} of {options.RecoveryVehicles:N0}");
            }

            progress?.Report(string.Create(CultureInfo.InvariantCulture, $"recovery: {seconds:N3} s for {recovered:N0} events (process CPU {cpu:N2} s)"));
            return seconds;
        }
        finally
        {
            await system.Terminate().ConfigureAwait(false);
        }
    }

    /// <summary>Managed bytes per idle vehicle: the growth of the heap when that many vehicles have state in the partitions.</summary>
    public static async Task<double> BytesPerIdleVehicleAsync(AkkaBenchmarkOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var (system, region) = await StartAsync(options, new FleetAkkaOptions { Partitions = options.Partitions }, persistent: false, cancellationToken).ConfigureAwait(false);
        try
        {
            // Every partition started (and warm) before the baseline: the vehicles are what is measured.
            await Task.WhenAll(Enumerable.Range(0, options.Partitions).Select(p => region.Ask<PartitionStats>(new GetPartitionStats(p), AskTimeout, cancellationToken))).ConfigureAwait(false);
            var before = GC.GetTotalMemory(forceFullCollection: true);
            var batches = Batches(options.Partitions, options.IdleVehicles, options.BatchSize, distinctIds: true);
            await SendAsync(region, batches, options.IdleVehicles, options.Partitions, cancellationToken).ConfigureAwait(false);
            batches = null;
            var after = GC.GetTotalMemory(forceFullCollection: true);
            return (after - before) / (double)options.IdleVehicles;
        }
        finally
        {
            await system.Terminate().ConfigureAwait(false);
        }
    }

    // Sends batches round-robin until `events` events went, at most `inFlight` unacknowledged; returns events sent.
    private static async Task<long> SendAsync(IActorRef region, TrackBatch[]? batches, long events, int inFlight, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batches);
        var pending = new Queue<Task<BatchTracked>>();
        long sent = 0;
        for (var i = 0; sent < events; i = (i + 1) % batches.Length)
        {
            if (pending.Count >= inFlight)
            {
                await pending.Dequeue().ConfigureAwait(false);
            }

            pending.Enqueue(region.Ask<BatchTracked>(batches[i], AskTimeout, cancellationToken));
            sent += batches[i].Events.Length;
        }

        while (pending.Count > 0)
        {
            await pending.Dequeue().ConfigureAwait(false);
        }

        return sent;
    }

    // Batches covering `vehicles` vehicles, each in its partition (by the same hash as tracking), BatchSize events each.
    private static TrackBatch[] Batches(int partitions, int vehicles, int batchSize, bool distinctIds = false)
    {
        var byPartition = Enumerable.Range(0, partitions).Select(_ => new List<VehicleEvent>()).ToArray();
        var time = new DateTime(2026, 12, 5, 7, 0, 0, DateTimeKind.Utc);
        for (var v = 0; v < vehicles; v++)
        {
            var id = (distinctIds ? "idle/" : "bench/") + v.ToString(CultureInfo.InvariantCulture);
            var e = VehicleEvent.Empty;
            e.VehicleId = id;
            e.Type = EventType.Vp;
            e.EventTime = time;
            e.ReceiveTime = time;
            e.Latitude = 60.17 + (v % 1000 * 1e-4);
            e.Longitude = 24.94 + (v / 1000 * 1e-4);
            byPartition[Tracking.Partitions.VehiclePartition.PartitionOf(id, partitions)].Add(e);
        }

        var batches = new List<TrackBatch>();
        for (var p = 0; p < partitions; p++)
        {
            foreach (var chunk in byPartition[p].Chunk(batchSize))
            {
                batches.Add(new TrackBatch(p, chunk, new long[chunk.Length], time));
            }
        }

        // Interleave the partitions, as a stream of many vehicles does.
        return [.. batches.Select((b, i) => (b, key: i % Math.Max(1, batches.Count / partitions))).OrderBy(x => x.key).Select(x => x.b)];
    }

    private static async Task<(ActorSystem System, IActorRef Region)> StartAsync(AkkaBenchmarkOptions options, FleetAkkaOptions akka, bool persistent, CancellationToken cancellationToken)
    {
        FleetAkka.PrepareStore(akka);
        var system = ActorSystem.Create(FleetAkka.SystemName, FleetAkka.Config(akka));
        var cluster = global::Akka.Cluster.Cluster.Get(system);
        var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        cluster.RegisterOnMemberUp(up.SetResult);
        await cluster.JoinAsync(cluster.SelfAddress, cancellationToken).ConfigureAwait(false);
        await up.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        var name = persistent ? "bench-journal" : "bench-partition";
        var region = await ClusterSharding.Get(system).StartAsync(name,
            entityId => persistent ? Props.Create(() => new JournalingPartition(name, int.Parse(entityId, CultureInfo.InvariantCulture))) : Props.Create(() => new MemoryPartition(int.Parse(entityId, CultureInfo.InvariantCulture))),
            ClusterShardingSettings.Create(system), new PartitionExtractor(options.Partitions)).ConfigureAwait(false);
        return (system, region);
    }

    /// <summary>What a benchmark partition keeps per vehicle.</summary>
    private sealed class VehicleSlot
    {
        public long Events;
        public long LastTicks;
        public double Latitude;
        public double Longitude;
    }

    private static void Apply(Dictionary<string, VehicleSlot> vehicles, VehicleEvent[] events)
    {
        foreach (ref readonly var e in events.AsSpan())
        {
            if (!vehicles.TryGetValue(e.VehicleId, out var slot))
            {
                vehicles.Add(e.VehicleId, slot = new VehicleSlot());
            }

            slot.Events++;
            slot.LastTicks = e.EventTime.Ticks;
            slot.Latitude = e.Latitude;
            slot.Longitude = e.Longitude;
        }
    }

    /// <summary>A partition that keeps its vehicles in memory.</summary>
    private sealed class MemoryPartition : ReceiveActor
    {
        private readonly Dictionary<string, VehicleSlot> _vehicles = new(StringComparer.Ordinal);
        private long _applied;

        public MemoryPartition(int partition)
        {
            Receive<TrackBatch>(b =>
            {
                Apply(_vehicles, b.Events);
                _applied += b.Events.Length;
                Sender.Tell(new BatchTracked(partition, [], b.Events.Length, 0));
            });
            Receive<GetPartitionStats>(_ => Sender.Tell(new PartitionStats(partition, _vehicles.Count, _applied, 0, 0, 0, false)));
        }
    }

    /// <summary>A partition that journals each batch (one event) before applying it.</summary>
    private sealed class JournalingPartition : ReceivePersistentActor
    {
        private readonly Dictionary<string, VehicleSlot> _vehicles = new(StringComparer.Ordinal);
        private long _applied;

        public JournalingPartition(string region, int partition)
        {
            PersistenceId = region + "-" + partition.ToString(CultureInfo.InvariantCulture);
            Recover<BatchAccepted>(b =>
            {
                Apply(_vehicles, b.Events);
                _applied += b.Events.Length;
            });
            Command<TrackBatch>(b => Persist(new BatchAccepted(b.Events, b.Sequences, b.Clock), a =>
            {
                Apply(_vehicles, a.Events);
                _applied += a.Events.Length;
                Sender.Tell(new BatchTracked(partition, [], a.Events.Length, 0));
            }));
            Command<GetPartitionStats>(_ => Sender.Tell(new PartitionStats(partition, _vehicles.Count, _applied, 0, LastSequenceNr, 0, false)));
        }

        public override string PersistenceId { get; }
    }
}
