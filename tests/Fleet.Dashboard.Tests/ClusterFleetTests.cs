using System.Globalization;
using System.IO.Compression;
using System.Net.Http.Json;
using System.Text.Json;
using Fleet.Dashboard.HubClient;
using Fleet.Testing;

namespace Fleet.Dashboard.Tests;

/// <summary>
/// Three <c>fleet serve --cluster</c> processes on one mosquitto broker and one PostgreSQL store, as a user runs them:
/// the sample city published to the broker is consumed once between the nodes (a shared subscription), each event is
/// journaled once by the partition that owns its vehicle (wherever that runs), and every node's map shows the whole
/// fleet. Then one node is killed with SIGKILL while the stream goes on: the survivors down it, its partitions recover on
/// them, nothing is applied twice, everything the survivors received is tracked, both maps keep updating every vehicle,
/// and a SignalR client on a survivor receives predictions for vehicles whose partitions run on the other node. Then a
/// fourth node joins while more events stream in: partitions move to it, nothing is applied twice or lost, and its map
/// shows the same fleet. Second: GTFS-RT feeds polled by one node (a cluster singleton), taken over when it dies.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ClusterFleetTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ThreeNodes_OneBroker_TrackTheFleetOnce_EveryMapShowsIt_AndAKilledNodeLosesNothingTracked()
    {
        var dir = Directory.CreateTempSubdirectory("fleet-cluster-").FullName;
        var processes = new List<FleetProcess>();
        try
        {
            var lines = await ReadLinesAsync(8_000);
            var first = Path.Combine(dir, "first.hfp");
            var second = Path.Combine(dir, "second.hfp");
            await File.WriteAllLinesAsync(first, lines[..3_000], Ct);
            await File.WriteAllLinesAsync(second, lines[3_000..6_000], Ct);
            var third = Path.Combine(dir, "third.hfp");
            await File.WriteAllLinesAsync(third, lines[6_000..], Ct);
            var published = Keys(lines);
            var firstEnd = lines[..3_000].Select(EventTime).Where(t => t is not null).Max()!.Value;

            await using var postgres = await PostgresServer.StartAsync();
            await using var broker = await Mosquitto.StartAsync();
            var gtfs = Path.Combine(RepoPaths.SampleData, "gtfs.zip");
            var nodes = Enumerable.Range(0, 3).Select(_ => "127.0.0.1:" + FreePort.Next().ToString(CultureInfo.InvariantCulture)).ToArray();
            var urls = nodes.Select(_ => FleetProcess.FreeUrl()).ToArray();
            for (var i = 0; i < nodes.Length; i++)
            {
                string[] args = ["serve", "--gtfs", gtfs, "--store", "postgres:" + postgres.ConnectionString, "--keep-journal",
                    "--cluster", nodes[i], "--urls", urls[i], "--mqtt", broker.Url.ToString().TrimEnd('/')];
                processes.Add(FleetProcess.Start(i == 0 ? args : [.. args, "--seed", nodes[0]]));
            }

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            for (var i = 0; i < nodes.Length; i++)
            {
                var node = i;
                await PollAsync(async () =>
                {
                    var health = await HealthAsync(http, urls[node]);
                    return health is { } h && Members(h) == 3 && Mqtt(h).GetProperty("state").GetString() == "connected";
                }, $"node {node} to see three members and its MQTT subscription", processes);
            }

            // 1. The first half, published as fast as the broker takes it.
            await PublishAsync(first, broker, "max");
            var received = await SettledAsync(http, urls, processes, "the nodes to receive the first half");
            Assert.All(received, r => Assert.True(r > 0, $"a node received nothing: {string.Join(", ", received)} (the shared subscription gives each node a share)"));
            await PollAsync(() => Task.FromResult(JournaledCount(postgres.ConnectionString) >= received.Sum()), "the partitions to journal every received event", processes);
            Assert.Equal(received.Sum(), JournaledCount(postgres.ConnectionString));
            var before = await VehicleSetsAsync(http, urls, processes, "every node to show the same fleet");
            Assert.True(before.Count >= 20, $"{before.Count} vehicles on the maps");
            foreach (var url in urls)
            {
                Assert.True((await HealthAsync(http, url))!.Value.GetProperty("predictions").GetInt32() > 0, $"{url}: no predictions");
            }

            // 2. A SignalR client on node 2 follows every route; the second half comes slower, and node 1 dies in it.
            await using var hub = await LiveHubClient.ConnectAsync(new Uri(urls[2]), cancellationToken: Ct);
            var routes = await http.GetFromJsonAsync<JsonElement>(urls[2] + "/api/routes", Ct);
            foreach (var route in routes.EnumerateArray())
            {
                await hub.InvokeAsync("Subscribe", ["route", route.GetProperty("id").GetString()], Ct);
            }

            var predicted = new HashSet<string>(StringComparer.Ordinal);
            using var stopReading = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            var reading = ReadPredictionsAsync(hub, predicted, stopReading.Token);
            using var replay = FleetProcess.Start("replay", second, "--to", broker.Url.ToString().TrimEnd('/'), "--speed", "4");
            // Mid-stream: node 1 has received part of the second half (and the publisher is not done).
            await PollAsync(async () => await HealthAsync(http, urls[1]) is { } h && Mqtt(h).GetProperty("events").GetInt64() > received[1] + 200,
                "node 1 to receive part of the second half", processes);
            Assert.False(replay.HasExited, "the second half was published before the kill: not mid-stream");
            processes[1].Kill();
            var downing = System.Diagnostics.Stopwatch.StartNew();
            var survivors = new[] { 0, 2 };
            foreach (var i in survivors)
            {
                var node = i;
                await PollAsync(async () => await HealthAsync(http, urls[node]) is { } h && Members(h) == 2,
                    $"node {node} to down the killed node", processes.Where((_, j) => j != 1));
            }

            // Within 30 s the killed node is downed, and its partitions start on the survivors with the next batches.
            Assert.True(downing.Elapsed < TimeSpan.FromSeconds(30), $"the killed node was downed after {downing.Elapsed.TotalSeconds:F0} s");

            await PollAsync(() => Task.FromResult(replay.HasExited), $"the second half to be published: {replay.Output}", processes.Where((_, j) => j != 1));
            Assert.Equal(0, replay.ExitCode);
            var after = await SettledAsync(http, [urls[0], urls[2]], [processes[0], processes[2]], "the survivors to receive the second half");
            // Everything the survivors received in both halves is tracked (node 1's share of the first half was, above),
            // once the batches that were waiting for node 1's partitions went again to the survivors that took them over.
            var survivorsReceived = received.Sum() + (after[0] - received[0]) + (after[1] - received[2]);
            await PollAsync(() => Task.FromResult(JournaledCount(postgres.ConnectionString) >= survivorsReceived),
                $"the survivors' {survivorsReceived} events to be journaled (now {JournaledCount(postgres.ConnectionString)})", [processes[0], processes[2]]);
            var journal = await JournalSettledAsync(postgres.ConnectionString);

            // Nothing applied twice: no event is in the journal more often than it was published.
            var twice = journal.Where(k => k.Value > published.GetValueOrDefault(k.Key)).Select(k => $"{k.Key} x{k.Value}").Take(5).ToList();
            Assert.True(twice.Count == 0, "journaled more often than published: " + string.Join("; ", twice));

            var metrics = FaultTests.ParseMetrics(await http.GetStringAsync(urls[0] + "/metrics", Ct));
            TestContext.Current.TestOutputHelper?.WriteLine(
                $"published {published.Values.Sum()} events; journaled {journal.Values.Sum()}; survivors received {survivorsReceived}; "
                + $"node 0: {metrics.GetValueOrDefault("fleet_tracking_batch_retries_total")} batches sent again, {metrics.GetValueOrDefault("fleet_tracking_repeated_batches_total")} repeats, "
                + $"{metrics.GetValueOrDefault("fleet_cluster_positions_received_total")} positions from the other nodes");

            // Both survivors' maps: the same fleet, every vehicle of it moved on into the second half (updating).
            var maps = await VehicleSetsAsync(http, [urls[0], urls[2]], [processes[0], processes[2]], "the survivors to show the same fleet");
            foreach (var url in new[] { urls[0], urls[2] })
            {
                var vehicles = (await http.GetFromJsonAsync<JsonElement>(url + "/api/vehicles", Ct)).EnumerateArray().ToList();
                var moved = vehicles.Count(v => v.GetProperty("updated").GetDateTime().ToUniversalTime() > firstEnd);
                Assert.True(moved >= before.Count * 9 / 10, $"{url}: {moved} of {vehicles.Count} vehicles updated after the first half (of {before.Count})");
            }

            Assert.True(maps.Count >= before.Count, $"{maps.Count} vehicles after the kill, {before.Count} before");
            // Predictions pushed on node 2 for the whole fleet: the partitions of most vehicles run on node 0 (two nodes
            // share 64 partitions), so most of them were computed there.
            await stopReading.CancelAsync();
            await reading;
            Assert.True(predicted.Count >= before.Count * 2 / 3, $"node 2's hub pushed predictions for {predicted.Count} of {before.Count} vehicles");

            // 3. A fourth node joins while the last part streams in: partitions move to it (rebalancing hands each over
            // with its state in the journal), and again nothing is applied twice and nothing received is lost.
            nodes = [.. nodes, "127.0.0.1:" + FreePort.Next().ToString(CultureInfo.InvariantCulture)];
            urls = [.. urls, FleetProcess.FreeUrl()];
            processes.Add(FleetProcess.Start("serve", "--gtfs", gtfs, "--store", "postgres:" + postgres.ConnectionString, "--keep-journal",
                "--cluster", nodes[3], "--urls", urls[3], "--mqtt", broker.Url.ToString().TrimEnd('/'), "--seed", nodes[0]));
            int[] members = [0, 2, 3];
            var running = members.Select(i => processes[i]).ToList();
            await PollAsync(async () => await HealthAsync(http, urls[3]) is { } h && Members(h) == 3 && Mqtt(h).GetProperty("state").GetString() == "connected",
                "the fourth node to join and subscribe", running);
            using var last = FleetProcess.Start("replay", third, "--to", broker.Url.ToString().TrimEnd('/'), "--speed", "2");
            await PollAsync(async () => await HealthAsync(http, urls[3]) is { } h && PartitionsHere(h) > 0, "partitions to move to the fourth node", running);
            await PollAsync(() => Task.FromResult(last.HasExited), $"the last part to be published: {last.Output}", running);
            var final = await SettledAsync(http, [.. members.Select(i => urls[i])], running, "the nodes to receive the last part");
            var allReceived = survivorsReceived + (final[0] - after[0]) + (final[1] - after[1]) + final[2];
            await PollAsync(() => Task.FromResult(JournaledCount(postgres.ConnectionString) >= allReceived),
                $"the {allReceived} received events to be journaled (now {JournaledCount(postgres.ConnectionString)})", running);
            var journalAfterJoin = await JournalSettledAsync(postgres.ConnectionString);
            var twiceAfterJoin = journalAfterJoin.Where(k => k.Value > published.GetValueOrDefault(k.Key)).Select(k => $"{k.Key} x{k.Value}").Take(5).ToList();
            Assert.True(twiceAfterJoin.Count == 0, "journaled more often than published after the join: " + string.Join("; ", twiceAfterJoin));
            var shares = new List<int>();
            foreach (var i in members)
            {
                shares.Add(PartitionsHere((await HealthAsync(http, urls[i]))!.Value));
            }

            // (A partition runs once it gets a message: after a handover it starts where its next batch goes.)
            Assert.InRange(shares.Sum(), 3, 64);
            Assert.All(shares, n => Assert.True(n > 0, $"partitions per node: {string.Join(", ", shares)}"));
            await VehicleSetsAsync(http, [.. members.Select(i => urls[i])], running, "the three nodes (the new one too) to show the same fleet");
        }
        finally
        {
            foreach (var p in processes)
            {
                p.Dispose();
            }

            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task GtfsRtFeeds_ArePolledByOneNode_EveryMapShowsTheirVehicles_AndAnotherNodeTakesOverWhenItDies()
    {
        var processes = new List<FleetProcess>();
        try
        {
            // The feeds: a single-node fleet serve replaying the sample city publishes GTFS-RT at /gtfs-rt/...
            var gtfs = Path.Combine(RepoPaths.SampleData, "gtfs.zip");
            var feed = FleetProcess.FreeUrl();
            processes.Add(FleetProcess.Start("serve", "--gtfs", gtfs, "--replay", Path.Combine(RepoPaths.SampleData, "recording.hfp.gz"), "--speed", "5",
                "--loop", "--urls", feed));
            await using var postgres = await PostgresServer.StartAsync();
            var nodes = Enumerable.Range(0, 3).Select(_ => "127.0.0.1:" + FreePort.Next().ToString(CultureInfo.InvariantCulture)).ToArray();
            var urls = nodes.Select(_ => FleetProcess.FreeUrl()).ToArray();
            for (var i = 0; i < nodes.Length; i++)
            {
                string[] args = ["serve", "--gtfs", gtfs, "--store", "postgres:" + postgres.ConnectionString, "--cluster", nodes[i], "--urls", urls[i],
                    "--gtfs-rt", feed + "/gtfs-rt/vehicle-positions", "--gtfs-rt", feed + "/gtfs-rt/trip-updates", "--gtfs-rt-interval", "1"];
                processes.Add(FleetProcess.Start(i == 0 ? args : [.. args, "--seed", nodes[0]]));
                if (i == 0)
                {
                    // The first node is the oldest: the feeds' singletons start there.
                    using var probe = new HttpClient();
                    await PollAsync(async () => await HealthAsync(probe, urls[0]) is { } h && Members(h) == 1, "the first node to be up", processes);
                }
            }

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            foreach (var url in urls)
            {
                await PollAsync(async () => await HealthAsync(http, url) is { } h && Members(h) == 3, $"{url} to see three members", processes);
            }

            // One node polls each feed; the others stand by. Every node's map shows the feed's vehicles.
            await PollAsync(async () => (await PollingAsync(http, urls)).SequenceEqual([2, 0, 0]), "node 0 to poll both feeds and the others to stand by", processes);
            var fleet = await VehicleSetsAsync(http, urls, processes, "every node to show the feed's vehicles");
            Assert.True(fleet.Count >= 20, $"{fleet.Count} vehicles");
            foreach (var url in urls)
            {
                await PollAsync(async () => (await http.GetFromJsonAsync<JsonElement>(url + "/gtfs-rt/trip-updates?format=json", Ct)).GetProperty("entity").GetArrayLength() > 0,
                    $"{url} to publish trip updates", processes);
            }

            // The poller dies: after the survivors down it, one of them polls each feed.
            processes[1].Kill();
            var killed = DateTime.UtcNow;
            string[] survivors = [urls[1], urls[2]];
            var alive = processes.Where((_, i) => i != 1).ToList();
            await PollAsync(async () => (await PollingAsync(http, survivors)).Sum() == 2, "a survivor to take over polling", alive);
            await PollAsync(async () =>
            {
                foreach (var url in survivors)
                {
                    var vehicles = (await http.GetFromJsonAsync<JsonElement>(url + "/api/vehicles", Ct)).EnumerateArray().ToList();
                    if (vehicles.Count(v => v.GetProperty("updated").GetDateTime().ToUniversalTime() > killed) < fleet.Count * 8 / 10)
                    {
                        return false;
                    }
                }

                return true;
            }, "both survivors' maps to update the fleet after the kill", alive);
        }
        finally
        {
            foreach (var p in processes)
            {
                p.Dispose();
            }
        }
    }

    [Fact]
    public async Task Replay_IsReplayedByOneNode_AndResumedByAnotherWhenItDies_EveryEventTrackedOnce()
    {
        var dir = Directory.CreateTempSubdirectory("fleet-cluster-replay-").FullName;
        var processes = new List<FleetProcess>();
        try
        {
            var file = Path.Combine(dir, "slice.hfp");
            await File.WriteAllLinesAsync(file, await ReadLinesAsync(6_000), Ct);
            // What the replay should journal: every event the parser takes from the slice, once.
            var expected = new Dictionary<string, int>(StringComparer.Ordinal);
            var parser = new Fleet.Ingest.Hfp.HfpStream();
            using (var reader = Fleet.Ingest.Recording.RecordingReader.Open(file))
            {
                while (reader.TryRead(out var line))
                {
                    if (parser.Process(line, out var e) == Fleet.Ingest.Hfp.HfpOutcome.Event && line.ReceiveTime != default)
                    {
                        var key = JournalKey(e);
                        expected[key] = expected.GetValueOrDefault(key) + 1;
                    }
                }
            }

            await using var postgres = await PostgresServer.StartAsync();
            var gtfs = Path.Combine(RepoPaths.SampleData, "gtfs.zip");
            var nodes = Enumerable.Range(0, 3).Select(_ => "127.0.0.1:" + FreePort.Next().ToString(CultureInfo.InvariantCulture)).ToArray();
            var urls = nodes.Select(_ => FleetProcess.FreeUrl()).ToArray();
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            for (var i = 0; i < nodes.Length; i++)
            {
                string[] args = ["serve", "--gtfs", gtfs, "--store", "postgres:" + postgres.ConnectionString, "--keep-journal", "--cluster", nodes[i], "--urls", urls[i],
                    "--replay", file, "--speed", "5"];
                processes.Add(FleetProcess.Start(i == 0 ? args : [.. args, "--seed", nodes[0]]));
                if (i == 0)
                {
                    await PollAsync(async () => await HealthAsync(http, urls[0]) is { } h && Members(h) == 1, "the first node to be up", processes);
                }
            }

            foreach (var url in urls)
            {
                await PollAsync(async () => await HealthAsync(http, url) is { } h && Members(h) == 3, $"{url} to see three members", processes);
            }

            // The oldest node replays; the others stand by. Killed mid-way, a survivor resumes from its checkpoint.
            var replaying = -1;
            await PollAsync(async () =>
            {
                var states = await ReplayStatesAsync(http, urls);
                replaying = Array.IndexOf(states, "replaying");
                return states.Count(s => s == "replaying") == 1 && states.Count(s => s == "standby") == 2;
            }, "one node to replay and the others to stand by", processes);
            await PollAsync(async () => (await HealthAsync(http, urls[replaying]))?.GetProperty("sources").EnumerateArray().First().GetProperty("events").GetInt64() > 1_500,
                "the replaying node to have replayed 1,500 events", processes);
            processes[replaying].Kill();
            var survivors = urls.Where((_, i) => i != replaying).ToArray();
            var alive = processes.Where((_, i) => i != replaying).ToList();
            await PollAsync(async () => (await ReplayStatesAsync(http, survivors)).Count(s => s == "finished") == 1, "a survivor to take over and finish the replay", alive);
            await PollAsync(() => Task.FromResult(JournaledCount(postgres.ConnectionString) >= expected.Values.Sum()),
                $"all {expected.Values.Sum()} events to be journaled (now {JournaledCount(postgres.ConnectionString)})", alive);
            var journal = await JournalSettledAsync(postgres.ConnectionString);
            var wrong = expected.Keys.Union(journal.Keys).Where(k => journal.GetValueOrDefault(k) != expected.GetValueOrDefault(k))
                .Select(k => $"{k}: journaled {journal.GetValueOrDefault(k)}, in the slice {expected.GetValueOrDefault(k)}").Take(5).ToList();
            Assert.True(wrong.Count == 0, "every event once: " + string.Join("; ", wrong));
            await VehicleSetsAsync(http, survivors, alive, "both survivors to show the same fleet");

            // Both survivors took every partition's results from the moment they subscribed: they counted the same
            // arrivals, give or take the first seconds' (a node whose subscription reached the others a moment later
            // misses those; in a loaded CI run one of 60 was seen missing).
            var arrivals = new List<long>();
            foreach (var url in survivors)
            {
                arrivals.Add(await ArrivalsAsync(http, url));
            }

            Assert.True(arrivals[0] > 0, "no arrivals on the survivors");
            Assert.True(Math.Abs(arrivals[0] - arrivals[1]) <= Math.Max(2, Math.Max(arrivals[0], arrivals[1]) / 20),
                $"the survivors counted {arrivals[0]} and {arrivals[1]} arrivals");
        }
        finally
        {
            foreach (var p in processes)
            {
                p.Dispose();
            }

            Directory.Delete(dir, recursive: true);
        }
    }

    // Arrivals the node tracked, over every route (the route charts' counts).
    private static async Task<long> ArrivalsAsync(HttpClient http, string url)
    {
        long total = 0;
        foreach (var route in (await http.GetFromJsonAsync<JsonElement>(url + "/api/routes", Ct)).EnumerateArray())
        {
            var history = await http.GetFromJsonAsync<JsonElement>(url + "/api/routes/" + Uri.EscapeDataString(route.GetProperty("id").GetString()!) + "/history", Ct);
            total += history.GetProperty("points").EnumerateArray().Sum(p => (long)p.GetProperty("arrivals").GetInt32());
        }

        return total;
    }

    // Per node, the state of its replay source ("replaying", "standby", "finished"...), or "" when it does not answer.
    private static async Task<string[]> ReplayStatesAsync(HttpClient http, string[] urls)
    {
        var result = new string[urls.Length];
        for (var i = 0; i < urls.Length; i++)
        {
            result[i] = await HealthAsync(http, urls[i]) is { } h
                ? h.GetProperty("sources").EnumerateArray().Where(s => s.GetProperty("kind").GetString() == "replay").Select(s => s.GetProperty("state").GetString()!).FirstOrDefault() ?? ""
                : "";
        }

        return result;
    }

    // Per node, how many GTFS-RT sources it polls (not standing by) and has had events from.
    private static async Task<int[]> PollingAsync(HttpClient http, string[] urls)
    {
        var result = new int[urls.Length];
        for (var i = 0; i < urls.Length; i++)
        {
            if (await HealthAsync(http, urls[i]) is { } h)
            {
                result[i] = h.GetProperty("sources").EnumerateArray()
                    .Count(s => s.GetProperty("kind").GetString() == "gtfs-rt" && s.GetProperty("state").GetString() != "standby" && s.GetProperty("connected").GetBoolean());
            }
        }

        return result;
    }

    private static async Task ReadPredictionsAsync(LiveHubClient hub, HashSet<string> vehicles, CancellationToken ct)
    {
        try
        {
            await foreach (var m in hub.Messages.ReadAllAsync(ct))
            {
                if (m.Target != "predictions")
                {
                    continue;
                }

                foreach (var p in m.Arguments[0].EnumerateArray())
                {
                    if (p.TryGetProperty("vehicleId", out var v) && v.GetString() is { } id)
                    {
                        vehicles.Add(id);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static async Task PublishAsync(string file, Mosquitto broker, string speed)
    {
        using var replay = FleetProcess.Start("replay", file, "--to", broker.Url.ToString().TrimEnd('/'), "--speed", speed);
        await PollAsync(() => Task.FromResult(replay.HasExited), $"the replay to finish: {replay.Output}", []);
        Assert.True(replay.ExitCode == 0, replay.Output);
    }

    // Each node's MQTT source events once they stop changing.
    private static async Task<long[]> SettledAsync(HttpClient http, string[] urls, IEnumerable<FleetProcess> processes, string what)
    {
        long[] last = [];
        var stable = 0;
        await PollAsync(async () =>
        {
            var now = new long[urls.Length];
            for (var i = 0; i < urls.Length; i++)
            {
                now[i] = (await HealthAsync(http, urls[i])) is { } h ? Mqtt(h).GetProperty("events").GetInt64() : -1;
            }

            stable = now.SequenceEqual(last) && now.Sum() > 0 ? stable + 1 : 0;
            last = now;
            return stable >= 5;
        }, what, processes);
        return last;
    }

    // The journal's events per key once it stops growing.
    private static async Task<Dictionary<string, int>> JournalSettledAsync(string postgres)
    {
        var last = -1L;
        var stable = 0;
        var until = DateTime.UtcNow + Timeout;
        while (stable < 5)
        {
            Assert.True(DateTime.UtcNow < until, "timed out waiting for the journal to settle");
            var now = JournaledCount(postgres);
            stable = now == last ? stable + 1 : 0;
            last = now;
            await Task.Delay(500, Ct);
        }

        return JournalKeys(postgres);
    }

    // Every node's vehicle ids, once they are the same on all; returns that set.
    private static async Task<HashSet<string>> VehicleSetsAsync(HttpClient http, string[] urls, IEnumerable<FleetProcess> processes, string what)
    {
        HashSet<string> result = [];
        var detail = "";
        await PollAsync(async () =>
        {
            var sets = new List<HashSet<string>>();
            foreach (var url in urls)
            {
                var vehicles = await http.GetFromJsonAsync<JsonElement>(url + "/api/vehicles", Ct);
                sets.Add([.. vehicles.EnumerateArray().Select(v => v.GetProperty("id").GetString()!)]);
            }

            detail = string.Join(", ", sets.Select(s => s.Count));
            result = sets[0];
            return sets.All(s => s.SetEquals(sets[0])) && sets[0].Count > 0;
        }, what + " (vehicles per node: " + detail + ")", processes);
        return result;
    }

    private static async Task<JsonElement?> HealthAsync(HttpClient http, string url)
    {
        try
        {
            return await http.GetFromJsonAsync<JsonElement>(url + "/api/health", Ct);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !Ct.IsCancellationRequested)
        {
            return null;
        }
    }

    // Up members in /api/health's cluster section (0 before the node is up: the section is left out until then).
    private static int Members(JsonElement health) =>
        health.TryGetProperty("cluster", out var c) && c.ValueKind == JsonValueKind.Object ? c.GetProperty("members").GetArrayLength() : 0;

    // The live sources' partitions running on the node.
    private static int PartitionsHere(JsonElement health) =>
        health.TryGetProperty("cluster", out var c) && c.ValueKind == JsonValueKind.Object && c.TryGetProperty("partitionsHere", out var here)
            && here.ValueKind == JsonValueKind.Object && here.TryGetProperty("live-partition", out var n) ? n.GetInt32() : 0;

    private static JsonElement Mqtt(JsonElement health) =>
        Assert.Single(health.GetProperty("sources").EnumerateArray(), s => s.GetProperty("kind").GetString() == "mqtt");

    private static async Task PollAsync(Func<Task<bool>> condition, string what, IEnumerable<FleetProcess> processes)
    {
        var until = DateTime.UtcNow + Timeout;
        while (!await condition())
        {
            foreach (var p in processes)
            {
                Assert.False(p.HasExited, $"a node exited while waiting for {what}: {p.Output}");
            }

            Assert.True(DateTime.UtcNow < until, $"timed out waiting for {what}");
            await Task.Delay(300, Ct);
        }
    }

    private static async Task<string[]> ReadLinesAsync(int count)
    {
        var lines = new List<string>(count);
        await using var gz = new GZipStream(File.OpenRead(Path.Combine(RepoPaths.SampleData, "recording.hfp.gz")), CompressionMode.Decompress);
        using var text = new StreamReader(gz);
        while (lines.Count < count && await text.ReadLineAsync(Ct) is { } line)
        {
            lines.Add(line);
        }

        return [.. lines];
    }

    // An HFP line's identity: vehicle (operator/number), event type and tst; null for a line that is not a valid event.
    private static string? Key(string line)
    {
        var parts = line.Split(' ', 3);
        if (parts.Length < 3)
        {
            return null;
        }

        var topic = parts[1].Split('/');
        if (topic.Length < 9 || EventTime(line) is not { } tst)
        {
            return null;
        }

        return $"{topic[7]}/{topic[8]}|{topic[5]}|{tst.Ticks}";
    }

    private static DateTime? EventTime(string line)
    {
        try
        {
            var payload = line.Split(' ', 3)[2];
            using var doc = JsonDocument.Parse(payload);
            foreach (var e in doc.RootElement.EnumerateObject())
            {
                if (e.Value.TryGetProperty("tst", out var tst) && tst.ValueKind == JsonValueKind.String
                    && DateTime.TryParse(tst.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var t))
                {
                    return t;
                }
            }
        }
        catch (Exception ex) when (ex is JsonException or IndexOutOfRangeException)
        {
        }

        return null;
    }

    private static Dictionary<string, int> Keys(IEnumerable<string> lines)
    {
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            if (Key(line) is { } key)
            {
                result[key] = result.GetValueOrDefault(key) + 1;
            }
        }

        return result;
    }

    private static string JournalKey(in Fleet.Ingest.Events.VehicleEvent e) => $"{e.VehicleId}|{e.Type.ToString().ToLowerInvariant()}|{e.EventTime.Ticks}";

    private const string JournalQuery = "SELECT message FROM journal WHERE persistence_id LIKE 'live-partition-%' AND manifest = 'BA'";

    private static long JournaledCount(string postgres) => JournalKeys(postgres).Values.Sum();

    // The live partitions' journaled events per key (vehicle, type, event time), read straight from the table.
    private static Dictionary<string, int> JournalKeys(string postgres)
    {
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        try
        {
            using var connection = new Npgsql.NpgsqlConnection(postgres);
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = JournalQuery;
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                foreach (var e in Fleet.Actors.Serialization.FleetSerializer.ReadBatchAccepted(reader.GetFieldValue<byte[]>(0)).Events)
                {
                    var key = JournalKey(e);
                    result[key] = result.GetValueOrDefault(key) + 1;
                }
            }
        }
        catch (Npgsql.PostgresException)
        {
            // the journal is not created yet
        }

        return result;
    }
}
