using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Fleet.Actors.Hosting;
using Fleet.Actors.Partitions;
using Fleet.Actors.Streams;
using Fleet.Ingest.Events;
using Fleet.Tracking;
using Fleet.Tracking.Network;
using Fleet.Tracking.Schedule;
using Fleet.Tracking.Vehicles;

namespace Fleet.Dashboard.Cli;

/// <summary>
/// <c>fleet bench cluster</c>: events/s through 1, 2 and 3 Akka.NET nodes in one process on this machine (each node a
/// real cluster member on loopback, with its own shard region and tracking stream, as <c>fleet serve --cluster</c> runs
/// them), and the cost of a cross-node hop (a partition's answer from this node against one from another node).
/// </summary>
internal static class BenchClusterCommand
{
    public static Command Create()
    {
        var cityDir = new Option<DirectoryInfo?>("--city-dir") { Description = "A folder made by fleet generate; generated into a temp folder when absent" };
        var events = new Option<int>("--events") { Description = "Events through each cluster size", DefaultValueFactory = _ => 200_000 };
        var maxNodes = new Option<int>("--max-nodes") { Description = "Largest cluster measured (1 to this many nodes)", DefaultValueFactory = _ => 3 };
        var hops = new Option<int>("--hops") { Description = "Round trips timed per side for the cross-node hop", DefaultValueFactory = _ => 2_000 };
        var json = new Option<bool>("--json") { Description = "Print one JSON line with the figures" };
        var command = new Command("cluster",
            """
            Benchmark tracking across Akka.NET cluster nodes on this machine: the generated 1,000-vehicle city's events
            through 1, 2 and 3 nodes (one process, loopback remoting; the nodes share out the 64 partitions, each node
            takes a share of the events as a shared MQTT subscription would give it, and every node's stream takes every
            partition's results, as the live maps do), and the round trip to a partition on this node against one on
            another node (the cost of a cross-node hop). Journal in memory: this measures tracking and the cluster, not
            the store (fleet bench actors and e2e measure the store).

            Example: fleet bench cluster --json
            """)
        {
            cityDir, events, maxNodes, hops, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            var quiet = parse.GetValue(json);
            void Say(string line) => BenchOutput.Say(quiet, line);

            var n = parse.GetValue(events);
            var most = parse.GetValue(maxNodes);
            var rounds = parse.GetValue(hops);
            if (n < 1_000 || most < 1 || most > 5 || rounds < 10)
            {
                await Console.Error.WriteLineAsync("fleet bench cluster: --events must be >= 1000, --max-nodes 1 to 5, --hops >= 10").ConfigureAwait(false);
                return 2;
            }

            s_say = Say;
            var city = BenchE2eCommand.LoadBenchCity(parse.GetValue(cityDir)?.FullName, 1, Say);
            var input = BenchE2eCommand.FirstEvents(city.Recording, n);
            var vehicles = input.Select(e => e.VehicleId).Distinct(StringComparer.Ordinal).Count();
            Say(string.Create(CultureInfo.InvariantCulture, $"{input.Count:N0} events of {vehicles:N0} vehicles, 64 partitions, {Environment.ProcessorCount} cores"));
            var catalog = new GtfsTripCatalog(city.Schedule);
            var rates = new List<double>();
            for (var nodes = 1; nodes <= most; nodes++)
            {
                var rate = await ThroughputAsync(nodes, input, catalog, fanOut: true, ct).ConfigureAwait(false);
                rates.Add(rate);
                Say(string.Create(CultureInfo.InvariantCulture, $"{nodes} node{(nodes == 1 ? " (no cluster: what fleet serve runs without --cluster)" : "s (fleet serve --cluster)")}: {rate,10:N0} events/s"));
            }

            // The same two nodes with each partition's results going back to the asking node only: what the fan-out to
            // every node's map costs, apart from sharding's own hop.
            var noFanOut = most >= 2 ? await ThroughputAsync(2, input, catalog, fanOut: false, ct).ConfigureAwait(false) : 0;
            if (most >= 2)
            {
                Say(string.Create(CultureInfo.InvariantCulture, $"2 nodes, results to the asking node only (no fan-out to every map): {noFanOut,10:N0} events/s"));
            }

            var (local, remote) = await HopAsync(catalog, rounds, ct).ConfigureAwait(false);
            Say(string.Create(CultureInfo.InvariantCulture, $"round trip to a partition (p50 of {rounds:N0}): on this node {local:F0} us, on another node {remote:F0} us: a cross-node hop costs {remote - local:F0} us"));
            if (quiet)
            {
                var figures = string.Join(",", rates.Select((r, i) => $"\"eventsPerSecond{i + 1}Node{(i == 0 ? "" : "s")}\":{Math.Round(r)}"));
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $$"""{"events":{{input.Count}},"vehicles":{{vehicles}},{{figures}},"eventsPerSecond2NodesNoFanOut":{{Math.Round(noFanOut)}},"hopLocalP50Us":{{Math.Round(local)}},"hopRemoteP50Us":{{Math.Round(remote)}},"hopCostUs":{{Math.Round(remote - local)}}}"""));
            }

            return 0;
        });
        return command;
    }

    // Events/s through a cluster of `nodes` in this process: each node tracks a share of the events (split by vehicle)
    // through its own stream into the cluster's region; done when every node's stream took every partition's results.
    private static Action<string>? s_say;

    private static async Task<double> ThroughputAsync(int nodes, List<VehicleEvent> input, GtfsTripCatalog catalog, bool fanOut, CancellationToken ct)
    {
        var cluster = await StartAsync(nodes, ct, fanOut).ConfigureAwait(false);
        try
        {
            var regions = new List<IActorRef>();
            foreach (var (system, options) in cluster)
            {
                regions.Add(await FleetAkka.StartRegionAsync(system, options,
                    new TrackingDomain(catalog, new TrackingOptions(), new DelayCarriedForwardPredictor())).ConfigureAwait(false));
            }

            var streams = new List<TrackingStream>();
            for (var i = 0; i < cluster.Count; i++)
            {
                var (system, options) = cluster[i];
                // Warm up: every shard allocated and its location known to this node's region (allocation is a one-off
                // round of the coordinator's distributed data, not part of the steady rate).
                for (var p = 0; p < options.Partitions; p++)
                {
                    await regions[i].Ask<PartitionStats>(new GetPartitionStats(p), TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
                }

                var stream = TrackingStream.Start(system, regions[i], options.Partitions, new NetworkTracker(new TrackingOptions(), catalog), new BenchE2eCommand.NullOutput(),
                    options: FleetAkka.StreamOptions(options, options.Region));
                await stream.Subscribed.WaitAsync(ct).ConfigureAwait(false);
                streams.Add(stream);
            }

            if (nodes > 1 && fanOut)
            {
                // Subscriptions reach the other nodes' mediators by gossip (every second): give it a few rounds.
                await Task.Delay(TimeSpan.FromSeconds(4), ct).ConfigureAwait(false);
            }

            var shares = Enumerable.Range(0, nodes).Select(_ => new List<VehicleEvent>()).ToArray();
            foreach (var e in input)
            {
                // Another hash than the partitions' (FNV-1a): which node receives a vehicle is independent of where its partition runs.
                shares[(int)((uint)StringComparer.Ordinal.GetHashCode(e.VehicleId) % (uint)nodes)].Add(e);
            }

            var clock = Stopwatch.StartNew();
            await Task.WhenAll(shares.Select((share, i) => Task.Run(async () =>
            {
                foreach (var e in share)
                {
                    await streams[i].OfferAsync(e, 0, ct).ConfigureAwait(false);
                }

                await streams[i].WhenDrainedAsync(ct).ConfigureAwait(false);
            }, ct))).ConfigureAwait(false);
            if (nodes > 1 && fanOut)
            {
                // The results travel on the partitions' topic: done when every stream has had them all (no change for 200 ms).
                var last = -1L;
                var settledAt = clock.Elapsed;
                while (true)
                {
                    // Every stream takes every partition's results: done when they all have the same count, settled.
                    var now = streams.Sum(s => s.TopicBatches);
                    var same = streams.All(s => s.TopicBatches == streams[0].TopicBatches);
                    if (now != last || !same)
                    {
                        last = now;
                        settledAt = clock.Elapsed;
                    }
                    else if (clock.Elapsed - settledAt > TimeSpan.FromMilliseconds(200))
                    {
                        break;
                    }

                    await Task.Delay(5, ct).ConfigureAwait(false);
                }

                var elapsed = settledAt;
                await DisposeAsync(streams).ConfigureAwait(false);
                return input.Count / elapsed.TotalSeconds;
            }

            var single = clock.Elapsed;
            await DisposeAsync(streams).ConfigureAwait(false);
            return input.Count / single.TotalSeconds;
        }
        finally
        {
            await StopAsync(cluster).ConfigureAwait(false);
        }
    }

    // The median round trip to a partition on this node and to one on the other node of a two-node cluster.
    private static async Task<(double LocalUs, double RemoteUs)> HopAsync(GtfsTripCatalog catalog, int rounds, CancellationToken ct)
    {
        var cluster = await StartAsync(2, ct).ConfigureAwait(false);
        try
        {
            var regions = new List<IActorRef>();
            foreach (var (system, options) in cluster)
            {
                regions.Add(await FleetAkka.StartRegionAsync(system, options, new TrackingDomain(catalog, new TrackingOptions())).ConfigureAwait(false));
            }

            var (_, first) = cluster[0];
            for (var p = 0; p < first.Partitions; p++)
            {
                await regions[0].Ask<PartitionStats>(new GetPartitionStats(p), TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
            }

            var state = await regions[0].Ask<CurrentShardRegionState>(GetShardRegionState.Instance, TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
            var here = state.Shards.SelectMany(s => s.EntityIds).Select(id => int.Parse(id, CultureInfo.InvariantCulture)).ToHashSet();
            var local = here.Min();
            var remote = Enumerable.Range(0, first.Partitions).First(p => !here.Contains(p));
            return (await MedianAsync(regions[0], local, rounds, ct).ConfigureAwait(false), await MedianAsync(regions[0], remote, rounds, ct).ConfigureAwait(false));
        }
        finally
        {
            await StopAsync(cluster).ConfigureAwait(false);
        }
    }

    private static async Task<double> MedianAsync(IActorRef region, int partition, int rounds, CancellationToken ct)
    {
        var times = new double[rounds];
        for (var i = -rounds / 10; i < rounds; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await region.Ask<PartitionStats>(new GetPartitionStats(partition), TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
            if (i >= 0)
            {
                times[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            }
        }

        Array.Sort(times);
        return times[rounds / 2];
    }

    // Starts `nodes` cluster nodes in this process (the first is the seed) and waits until the first sees them all Up.
    private static async Task<List<(ActorSystem System, FleetAkkaOptions Options)>> StartAsync(int nodes, CancellationToken ct, bool fanOut = true)
    {
        var ports = Enumerable.Range(0, nodes).Select(_ => FreePort()).ToArray();
        var seed = "127.0.0.1:" + ports[0].ToString(CultureInfo.InvariantCulture);
        var result = new List<(ActorSystem, FleetAkkaOptions)>();
        try
        {
            for (var i = 0; i < nodes; i++)
            {
                var options = new FleetAkkaOptions { Region = "bench-partition", Clustered = nodes > 1, Port = nodes > 1 ? ports[i] : 0, Seeds = nodes > 1 ? [seed] : [], PublishResults = fanOut };
                result.Add((await FleetAkka.StartNodeAsync(options, ct).ConfigureAwait(false), options));
            }

            var self = Akka.Cluster.Cluster.Get(result[0].Item1);
            while (self.State.Members.Count(m => m.Status == MemberStatus.Up) < nodes)
            {
                await Task.Delay(50, ct).ConfigureAwait(false);
            }

            return result;
        }
        catch
        {
            await StopAsync(result).ConfigureAwait(false);
            throw;
        }
    }

    private static async Task StopAsync(List<(ActorSystem System, FleetAkkaOptions Options)> cluster) =>
        await Task.WhenAll(cluster.Select(n => n.System.Terminate())).ConfigureAwait(false);

    private static async Task DisposeAsync(List<TrackingStream> streams)
    {
        s_say?.Invoke(string.Create(CultureInfo.InvariantCulture,
            $"  streams: {streams.Sum(s => s.Batches):N0} batches, {streams.Sum(s => s.Retries)} sent again, {streams.Sum(s => s.Repeated)} repeats, {streams.Sum(s => s.TopicBatches):N0} results from the topic, {streams.Sum(s => s.TopicDropped)} dropped"));
        foreach (var s in streams)
        {
            await s.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
