using System.Globalization;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.Configuration;
using Fleet.Actors.Partitions;
using Fleet.Actors.Serialization;
using Microsoft.Data.Sqlite;

namespace Fleet.Actors.Hosting;

/// <summary>Where partitions journal and snapshot: SQLite (the embedded default), PostgreSQL, or memory.</summary>
public enum JournalKind
{
    /// <summary>Nothing survives the process (tests, benchmarks, <c>fleet serve</c> without a store): the partitions of a
    /// region started on it apply their batches without journaling them.</summary>
    InMemory,

    /// <summary>A SQLite file (WAL).</summary>
    Sqlite,

    /// <summary>A PostgreSQL database (Npgsql connection string).</summary>
    Postgres,
}

/// <summary>The Akka side of tracking: partitions, store, node address.</summary>
public sealed record FleetAkkaOptions
{
    /// <summary>The shard region's type name (part of every persistence id: <c>{Region}-{partition}</c>).</summary>
    public string Region { get; init; } = "vehicle-partition";

    /// <summary>Partitions of the vehicle stream (a vehicle's is a stable hash of its id).</summary>
    public int Partitions { get; init; } = 64;

    /// <summary>Where partitions persist.</summary>
    public JournalKind Journal { get; init; } = JournalKind.InMemory;

    /// <summary>The SQLite file or the PostgreSQL connection string (not for <see cref="JournalKind.InMemory"/>).</summary>
    public string? Connection { get; init; }

    /// <summary>Keep every journaled batch (an audit trail of what was tracked) instead of deleting what each
    /// partition's newest snapshot covers.</summary>
    public bool KeepJournal { get; init; }

    /// <summary>The node's host for Akka.Remote (loopback by default).</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>The node's port for Akka.Remote (0: any free port, for a single node).</summary>
    public int Port { get; init; }

    /// <summary>
    /// True for a node of a multi-node cluster (<c>fleet serve --cluster</c>): it joins <see cref="Seeds"/> (or, with
    /// none, forms the cluster as its own seed), and the Split Brain Resolver (keep-majority) downs unreachable nodes.
    /// </summary>
    public bool Clustered { get; init; }

    /// <summary>On a multi-node cluster, true (the default) for every partition to publish its results to every node's
    /// live state; false sends them back to the asking node only (<c>fleet bench cluster</c> measures what the fan-out
    /// costs).</summary>
    public bool PublishResults { get; init; } = true;

    /// <summary>The seed nodes' <c>host:port</c> addresses (<c>--seed</c>); empty: this node is its own seed.</summary>
    public IReadOnlyList<string> Seeds { get; init; } = [];

    /// <summary>How long the cluster must be stable before the Split Brain Resolver downs the unreachable side.</summary>
    public TimeSpan StableAfter { get; init; } = TimeSpan.FromSeconds(7);

    /// <summary>The Akka addresses of <see cref="Seeds"/> (<c>akka.tcp://fleet@host:port</c>).</summary>
    public IReadOnlyList<string> SeedAddresses => [.. Seeds.Select(s => $"akka.tcp://{FleetAkka.SystemName}@{s}")];
}

/// <summary>
/// Akka.NET's configuration for Fleet: a cluster node (one by default, joined to itself) with cluster sharding
/// (sharding's state in distributed data, never in the vehicles' journal; partitions never passivated), Akka.Persistence.Sql
/// on SQLite or PostgreSQL (or memory), Fleet's binary serializer bound to <see cref="IFleetMessage"/>, and a journal
/// call timeout long enough for a flood of batches.
/// </summary>
public static class FleetAkka
{
    /// <summary>The actor system's name (cluster nodes must share it).</summary>
    public const string SystemName = "fleet";

    /// <summary>The HOCON configuration for <paramref name="options"/>.</summary>
    public static Config Config(FleetAkkaOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var persistence = options.Journal switch
        {
            JournalKind.InMemory => """
                akka.persistence.journal.plugin = "akka.persistence.journal.inmem"
                akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
                """,
            _ => SqlPersistence(options),
        };
        // A multi-node cluster: the Split Brain Resolver downs the unreachable side (keep-majority: the side with more
        // nodes stays; its partitions move to the survivors, which recover them from journal and snapshot).
        var clustering = !options.Clustered ? "" : $$"""
            downing-provider-class = "Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster"
                split-brain-resolver {
                  active-strategy = keep-majority
                  stable-after = {{options.StableAfter.TotalSeconds.ToString(CultureInfo.InvariantCulture)}}s
                }
                seed-nodes = [{{string.Join(", ", options.SeedAddresses.Select(a => "\"" + a + "\""))}}]
            """;
        var text = $$"""
            akka {
              loglevel = WARNING
              stdout-loglevel = WARNING
              actor {
                provider = cluster
                serializers { fleet = "{{typeof(FleetSerializer).AssemblyQualifiedName}}" }
                serialization-bindings { "{{typeof(IFleetMessage).AssemblyQualifiedName}}" = fleet }
                serialization-identifiers { "{{typeof(FleetSerializer).AssemblyQualifiedName}}" = {{FleetSerializer.Id}} }
              }
              remote.dot-netty.tcp {
                hostname = "{{options.Host}}"
                port = {{options.Port.ToString(CultureInfo.InvariantCulture)}}
                # A batch of a busy partition (up to 4,096 events) and what tracking derives from it are far larger than
                # the 128 kB default frame; a larger message would be dropped.
                maximum-frame-size = 32 MiB
                send-buffer-size = 32 MiB
                receive-buffer-size = 32 MiB
                # Batches and their acknowledgements are a request-response flow: writes go out at once instead of
                # waiting up to 40 ms for more to batch with.
                batching.enabled = false
              }
              cluster {
                log-info = off
                {{clustering}}
                sharding {
                  state-store-mode = ddata
                  remember-entities = off
                  passivate-idle-entity-after = off
                  distributed-data.durable.keys = []
                }
              }
              persistence {
                journal.sql.circuit-breaker.call-timeout = 60s
                snapshot-store.sql.circuit-breaker.call-timeout = 60s
              }
            }
            {{persistence}}
            """;
        // Sharding's, distributed data's, pub-sub's and the singleton's own settings (and serializers) from the start: a
        // node must read their messages from other nodes before it has used these extensions itself.
        return ConfigurationFactory.ParseString(text)
            .WithFallback(ClusterSharding.DefaultConfig())
            .WithFallback(Akka.DistributedData.DistributedData.DefaultConfig())
            .WithFallback(Akka.Cluster.Tools.PublishSubscribe.DistributedPubSub.DefaultConfig())
            .WithFallback(Akka.Cluster.Tools.Singleton.ClusterSingleton.DefaultConfig());
    }

    /// <summary>Creates a node, joins it to itself (a cluster of one) and starts the partitions' shard region.</summary>
    public static async Task<(ActorSystem System, IActorRef Region)> StartAsync(FleetAkkaOptions options, TrackingDomain domain, CancellationToken cancellationToken = default)
    {
        var system = await StartNodeAsync(options, cancellationToken).ConfigureAwait(false);
        try
        {
            return (system, await StartRegionAsync(system, options, domain).ConfigureAwait(false));
        }
        catch
        {
            await system.Terminate().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Prepares the store, creates a node and joins it to itself (a cluster of one); returns once it is up.</summary>
    public static async Task<ActorSystem> StartNodeAsync(FleetAkkaOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        PrepareStore(options);
        var system = ActorSystem.Create(SystemName, Config(options));
        try
        {
            var cluster = Cluster.Get(system);
            var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            cluster.RegisterOnMemberUp(up.SetResult);
            await JoinAsync(cluster, options, cancellationToken).ConfigureAwait(false);
            await up.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            return system;
        }
        catch
        {
            await system.Terminate().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Joins the node to its cluster: to itself (a cluster of one, or the first node of a cluster with no
    /// seeds given), or to the seed nodes.</summary>
    public static Task JoinAsync(Cluster cluster, FleetAkkaOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Seeds.Count == 0)
        {
            return cluster.JoinAsync(cluster.SelfAddress, cancellationToken);
        }

        return cluster.JoinSeedNodesAsync(options.SeedAddresses.Select(Address.Parse), cancellationToken);
    }

    /// <summary>Completes with <paramref name="system"/> once it is an Up member of its cluster.</summary>
    public static async Task<ActorSystem> WhenUpAsync(ActorSystem system)
    {
        ArgumentNullException.ThrowIfNull(system);
        var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Cluster.Get(system).RegisterOnMemberUp(up.SetResult);
        await up.Task.ConfigureAwait(false);
        return system;
    }

    /// <summary>Starts the partitions' shard region on a running cluster node.</summary>
    public static Task<IActorRef> StartRegionAsync(ActorSystem system, FleetAkkaOptions options, TrackingDomain domain)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(domain);
        var region = options.Region;
        domain = domain with
        {
            Journaled = domain.Journaled && options.Journal != JournalKind.InMemory,
            TruncateJournal = domain.TruncateJournal && !options.KeepJournal,
            PublishTopic = options.Clustered && options.PublishResults ? TrackedTopic(region) : null,
        };
        return ClusterSharding.Get(system).StartAsync(
            region,
            entityId => Props.Create(() => new VehiclePartitionActor(region, int.Parse(entityId, CultureInfo.InvariantCulture), domain)),
            ClusterShardingSettings.Create(system),
            new PartitionExtractor(Math.Max(1, options.Partitions)));
    }

    /// <summary>The DistributedPubSub topic a clustered region's partitions publish their results to (every node subscribes).</summary>
    public static string TrackedTopic(string region) => region + "-tracked";

    /// <summary>A <see cref="Streams.TrackingStream"/>'s settings for a region on this node: on a multi-node cluster it takes every
    /// partition's results from their topic and sends a batch again when its partition's node died.</summary>
    public static Streams.TrackingStreamOptions StreamOptions(FleetAkkaOptions options, string region)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Clustered
            ? new Streams.TrackingStreamOptions { Topic = options.PublishResults ? TrackedTopic(region) : null, RetryAfter = TimeSpan.FromSeconds(10), AskTimeout = TimeSpan.FromMinutes(3) }
            : new Streams.TrackingStreamOptions();
    }

    /// <summary>Makes the store ready: SQLite's folder and write-ahead log (set on the file, once).</summary>
    public static void PrepareStore(FleetAkkaOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Journal != JournalKind.Sqlite)
        {
            return;
        }

        var path = options.Connection ?? throw new ArgumentException("a SQLite store needs a file", nameof(options));
        if (Path.GetDirectoryName(Path.GetFullPath(path)) is { } dir)
        {
            Directory.CreateDirectory(dir);
        }

        using var connection = new SqliteConnection(SqliteConnectionString(path));
        connection.Open();
        using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA journal_mode=WAL;";
        pragma.ExecuteNonQuery();
    }

    private static string SqliteConnectionString(string path) => new SqliteConnectionStringBuilder { DataSource = path, Pooling = true }.ToString();

    private static string SqlPersistence(FleetAkkaOptions options)
    {
        var (provider, connection) = options.Journal == JournalKind.Sqlite
            ? ("SQLite.MS", SqliteConnectionString(options.Connection!))
            : ("PostgreSQL.15", options.Connection ?? throw new ArgumentException("a PostgreSQL store needs a connection string", nameof(options)));
        var quoted = "\"" + connection.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
        return $$"""
            akka.persistence {
              journal {
                plugin = "akka.persistence.journal.sql"
                sql {
                  class = "Akka.Persistence.Sql.Journal.SqlWriteJournal, Akka.Persistence.Sql"
                  connection-string = {{quoted}}
                  provider-name = "{{provider}}"
                  auto-initialize = true
                  tag-write-mode = Csv
                }
              }
              snapshot-store {
                plugin = "akka.persistence.snapshot-store.sql"
                sql {
                  class = "Akka.Persistence.Sql.Snapshot.SqlSnapshotStore, Akka.Persistence.Sql"
                  connection-string = {{quoted}}
                  provider-name = "{{provider}}"
                  auto-initialize = true
                }
              }
            }
            """;
    }
}

/// <summary>Routes a partition message to the entity named after its partition.</summary>
/// <param name="shards">Shards the partitions are spread over (placement and rebalancing move whole shards).</param>
public sealed class PartitionExtractor(int shards) : HashCodeMessageExtractor(shards)
{
    /// <inheritdoc />
    public override string? EntityId(object message) =>
        message is IPartitionMessage m ? m.Partition.ToString(CultureInfo.InvariantCulture) : null;
}
