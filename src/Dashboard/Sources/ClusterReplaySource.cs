using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Streams.Dsl;
using Fleet.Actors.Hosting;
using Fleet.Actors.Replay;
using Fleet.Dashboard.Live;
using Fleet.Ingest.Streams;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Sources;

/// <summary>
/// <c>fleet serve --cluster --replay FILE</c>: the recording replayed once cluster-wide, by the node that holds its
/// cluster singleton (the others show it as <c>standby</c> and one takes over when the holder dies). Its events go through
/// the node's live pipeline like an MQTT source's (tracked on the cluster's partitions, shown on every node's map), in
/// recorded time, paced at <see cref="ReplayOptions.Speed"/>.
/// </summary>
/// <remarks>
/// <para>Resuming: the holder saves the line it reached in a persistent checkpoint (the shared store) every
/// <see cref="CheckpointEvery"/> lines; a node that takes over sends again from <see cref="ResendLines"/> lines before
/// that checkpoint (what the dead node had read but perhaps not had tracked), each event with its line number as
/// sequence number, so a partition skips what its vehicle had already applied: nothing is applied twice.</para>
/// <para>Not in a cluster: seeking, pausing and speed changes (<c>/api/replay</c>) and looping, which are the
/// single-node replay's (<see cref="ReplaySource"/>).</para>
/// </remarks>
public sealed partial class ClusterReplaySource : BackgroundService
{
    /// <summary>Lines between two checkpoints.</summary>
    public const int CheckpointEvery = 500;

    /// <summary>Lines sent again before the checkpoint when a node takes over (far more than the pipeline holds).</summary>
    public const int ResendLines = 20_000;

    /// <summary>The least the holder waits before its first line: nodes started together join the cluster within it
    /// (a node that joins later has no history from before it subscribed).</summary>
    public static readonly TimeSpan JoinSettle = TimeSpan.FromSeconds(3);

    /// <summary>The longest the holder waits, before its first line, for every member's map to listen to the
    /// partitions' results (it then starts anyway, and says so in the log).</summary>
    public static readonly TimeSpan SubscriptionWait = TimeSpan.FromSeconds(15);

    private readonly ReplayOptions _options;
    private readonly LivePipeline _pipeline;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TrackingCluster _cluster;
    private readonly SourceStatus _status;
    private readonly HfpStream _hfp = new();
    private readonly string _name;

    /// <summary>Creates the source; it starts with the host.</summary>
    /// <param name="options">The recording and its speed.</param>
    /// <param name="pipeline">The node's live pipeline.</param>
    /// <param name="sources">Where its health entry is registered.</param>
    /// <param name="time">The clock.</param>
    /// <param name="logger">Logger.</param>
    /// <param name="cluster">The node.</param>
    public ClusterReplaySource(ReplayOptions options, LivePipeline pipeline, SourceRegistry sources, TimeProvider time, ILogger<ClusterReplaySource> logger, TrackingCluster cluster)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(cluster);
        _options = options;
        _pipeline = pipeline;
        _time = time;
        _logger = logger;
        _cluster = cluster;
        _name = Path.GetFileName(options.Path);
        _status = sources.Register("replay:" + _name, "replay");
        _status.ParserRejections = _hfp.Rejections;
        _status.State = "starting";
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!File.Exists(_options.Path))
        {
            _status.LastError = $"recording '{_options.Path}' not found";
            _status.State = "failed";
            LogFailed(_status.LastError);
            return;
        }

        SingletonLease? lease = null;
        IActorRef? checkpoint = null;
        try
        {
            var system = await _cluster.GetSystemAsync().WaitAsync(stoppingToken).ConfigureAwait(false);
            var key = "cluster-" + string.Concat(_name.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-'));
            lease = SingletonLease.Start(system, "replay-" + key);
            if (!lease.Held)
            {
                _status.State = "standby";
                await lease.WhenHeldAsync(stoppingToken).ConfigureAwait(false);
            }

            // Every node's subscription to the partitions' results reaches the others by gossip (each second): the
            // first lines wait for the nodes starting together, then until every map listens, so that their results
            // reach every map.
            await AwaitListenersAsync(system, stoppingToken).ConfigureAwait(false);
            _status.State = "replaying";
            _status.Connected = true;
            checkpoint = system.ActorOf(Props.Create(() => new ReplayCheckpointActor(key)), "replay-checkpoint-" + key);
            var reached = await checkpoint.Ask<ReplayCheckpoint>(GetReplayCheckpoint.Instance, TimeSpan.FromSeconds(30), stoppingToken).ConfigureAwait(false);
            var from = Math.Max(0, reached.Line - ResendLines);
            LogReplaying(_name, reached.Line, from);
            var end = await ReplayAsync(from, lease, checkpoint, stoppingToken).ConfigureAwait(false);
            _status.State = end ? "finished" : "stopped";
            if (end)
            {
                LogFinished(_name, _hfp.Parsed);
                await Task.Delay(System.Threading.Timeout.InfiniteTimeSpan, _time, stoppingToken).ConfigureAwait(false); // holds the lease: nobody replays it again
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException or AskTimeoutException)
        {
            _status.LastError = ex.Message;
            _status.State = "failed";
            LogFailed(ex.Message);
        }
        finally
        {
            _status.Connected = false;
            checkpoint?.Tell(PoisonPill.Instance);
            lease?.Dispose();
        }
    }

    // Waits JoinSettle, then until every member's map (joining or up) listens to the partitions' results, or
    // SubscriptionWait ran out. This node's listens once its pipeline started (it subscribes first). The others': an
    // Identify published to the topic goes to each node this node's view of the topic lists (a node's topic actor
    // exists while its map subscribes there), and that topic actor answers by itself; the results the partitions
    // publish reach those nodes the same way.
    private async Task AwaitListenersAsync(ActorSystem system, CancellationToken ct)
    {
        if (!_cluster.Options.PublishResults)
        {
            return;
        }

        var topic = FleetAkka.TrackedTopic(PartitionTracking.RegionName);
        var mediator = DistributedPubSub.Get(system).Mediator;
        var cluster = Akka.Cluster.Cluster.Get(system);
        using var inbox = Inbox.Create(system);
        var until = _time.GetUtcNow() + SubscriptionWait;
        await Task.Delay(JoinSettle, _time, ct).ConfigureAwait(false);
        await _pipeline.Started.WaitAsync(ct).ConfigureAwait(false); // the replay cannot run before it anyway
        var answered = new HashSet<Address> { cluster.SelfAddress };
        for (var probe = 1; ; probe++)
        {
            // Members joining count too: they are about to take results.
            var up = cluster.State.Members.Where(m => m.Status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Joining)
                .Select(m => m.Address).ToHashSet();
            if (up.Count > 0 && up.IsSubsetOf(answered))
            {
                LogListeners(up.Count, probe - 1);
                return;
            }

            if (_time.GetUtcNow() >= until)
            {
                LogListenersMissing(string.Join(", ", up.Except(answered)), SubscriptionWait.TotalSeconds);
                return;
            }

            inbox.Send(mediator, new Publish(topic, new Identify(probe)));
            var round = _time.GetUtcNow() + TimeSpan.FromMilliseconds(500);
            while (round - _time.GetUtcNow() is var left && left > TimeSpan.FromMilliseconds(20))
            {
                object answer;
                try
                {
                    // The inbox throws its timeout (or answers it, below); the extra second only guards against a hang.
                    answer = await inbox.ReceiveAsync(left).WaitAsync(left + TimeSpan.FromSeconds(1), _time, ct).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    break; // nothing more this round
                }

                if (answer is ActorIdentity { Subject: { } listener } && !listener.Path.Address.HasLocalScope)
                {
                    answered.Add(listener.Path.Address);
                }
                else if (answer is Status.Failure)
                {
                    break; // the inbox's own timeout, when it answers it rather than throwing it
                }
            }
        }
    }

    // Streams the recording from line `from` on, paced, into the pipeline; returns true at its end, false when the
    // lease was lost. Every CheckpointEvery lines the line reached goes to the shared store.
    private async Task<bool> ReplayAsync(long from, SingletonLease lease, IActorRef checkpoint, CancellationToken ct)
    {
        var checkpointed = from;
        var last = from;
        var events = RecordingSources.Events(_options.Path, _hfp, from)
            .Via(RecordingSources.Paced(_options.Speed, _time))
            .TakeWhile(_ => lease.Held)
            .Select(e =>
            {
                last = e.Line;
                if (e.Line / CheckpointEvery > checkpointed / CheckpointEvery)
                {
                    checkpointed = e.Line;
                    checkpoint.Tell(new ReplayCheckpoint(0, e.Line));
                }

                return e;
            });
        await StreamedSource.RunAsync(_cluster, _pipeline, events, () => _pipeline.RecordedEventSink(_status), ct).ConfigureAwait(false);
        if (!lease.Held || ct.IsCancellationRequested)
        {
            return false;
        }

        checkpoint.Tell(new ReplayCheckpoint(0, Math.Max(last, checkpointed)));
        return true;
    }

    [LoggerMessage(EventId = 5060, Level = LogLevel.Information, Message = "Replay {Name}: this node replays it now (the cluster's singleton for it), checkpoint at line {Checkpoint}, sending from line {From}")]
    private partial void LogReplaying(string name, long checkpoint, long from);

    [LoggerMessage(EventId = 5061, Level = LogLevel.Information, Message = "Replay {Name} finished: {Events} events")]
    private partial void LogFinished(string name, long events);

    [LoggerMessage(EventId = 5063, Level = LogLevel.Information, Message = "Cluster replay: the maps of all {Members} members listen to the partitions' results ({Probes} probes)")]
    private partial void LogListeners(int members, int probes);

    [LoggerMessage(EventId = 5064, Level = LogLevel.Warning, Message = "Cluster replay: no answer from the map of {Missing} after {Seconds} s; starting anyway (its map may miss the first results)")]
    private partial void LogListenersMissing(string missing, double seconds);

    [LoggerMessage(EventId = 5062, Level = LogLevel.Error, Message = "Cluster replay failed: {Reason}")]
    private partial void LogFailed(string reason);
}
