using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Fleet.Testing;

namespace Fleet.Dashboard.Tests;

/// <summary>
/// <c>fleet serve --cluster</c> as real processes on loopback, on a real PostgreSQL server: two nodes form the cluster
/// <c>fleet</c>: three nodes each see all three Up and the same leader in <c>/api/health</c>; one killed with SIGKILL is
/// downed by the Split Brain Resolver (keep-majority) and the two survivors carry on. A cluster on SQLite is refused.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ClusterTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task ThreeNodes_FormTheCluster_AndTheSurvivorsDownAKilledOne()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var postgres = await PostgresServer.StartAsync();
        var store = "postgres:" + postgres.ConnectionString;
        var gtfs = Path.Combine(RepoPaths.SampleData, "gtfs.zip");
        var nodes = Enumerable.Range(0, 3).Select(_ => "127.0.0.1:" + FreePort.Next().ToString(CultureInfo.InvariantCulture)).ToArray();
        var urls = nodes.Select(_ => FleetProcess.FreeUrl()).ToArray();
        // The first node forms the cluster as its own seed; the others join it.
        var processes = new List<FleetProcess>();
        try
        {
            for (var i = 0; i < nodes.Length; i++)
            {
                string[] args = ["serve", "--gtfs", gtfs, "--store", store, "--cluster", nodes[i], "--urls", urls[i]];
                processes.Add(FleetProcess.Start(i == 0 ? args : [.. args, "--seed", nodes[0]]));
            }

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            var addresses = nodes.Select(n => $"akka.tcp://fleet@{n}").Order(StringComparer.Ordinal).ToArray();
            var views = new JsonElement[nodes.Length];
            for (var i = 0; i < nodes.Length; i++)
            {
                views[i] = await PollClusterAsync(http, urls[i], c => Members(c).SequenceEqual(addresses), $"node {i} to see all three Up", processes[i], ct);
                Assert.Equal($"akka.tcp://fleet@{nodes[i]}", views[i].GetProperty("self").GetString());
                Assert.Equal(64, views[i].GetProperty("partitions").GetInt32());
            }

            // One leader, the same for all.
            Assert.Single(views.Select(v => v.GetProperty("leader").GetString()).Distinct());
            Assert.Contains(views[0].GetProperty("leader").GetString(), addresses);

            // SIGKILL the first node (the seed): the other two find it unreachable and, as the majority, the Split Brain
            // Resolver (keep-majority) downs it; they carry on as a cluster of two with a leader among them.
            processes[0].Kill();
            var survivors = addresses.Where(a => a != $"akka.tcp://fleet@{nodes[0]}").ToArray();
            for (var i = 1; i < nodes.Length; i++)
            {
                var after = await PollClusterAsync(http, urls[i],
                    c => Members(c).SequenceEqual(survivors) && c.GetProperty("unreachable").GetArrayLength() == 0, $"node {i} to down the killed node", processes[i], ct);
                Assert.Contains(after.GetProperty("leader").GetString(), survivors);
            }
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
    public async Task Cluster_OnSqliteOrWithALoopingReplay_IsRefusedWithAClearMessage()
    {
        var node = "127.0.0.1:" + FreePort.Next().ToString(CultureInfo.InvariantCulture);
        var sqlite = await FleetProcess.RunFleetAsync(Path.GetTempPath(), Timeout, "serve", "--cluster", node, "--store", "sqlite:x.db");
        Assert.Equal(2, sqlite.Exit);
        Assert.Contains("--cluster needs a store every node shares: --store postgres:", sqlite.Output, StringComparison.Ordinal);

        var noStore = await FleetProcess.RunFleetAsync(Path.GetTempPath(), Timeout, "serve", "--cluster", node);
        Assert.Equal(2, noStore.Exit);
        Assert.Contains("--cluster needs a store", noStore.Output, StringComparison.Ordinal);

        var seedAlone = await FleetProcess.RunFleetAsync(Path.GetTempPath(), Timeout, "serve", "--seed", node);
        Assert.Equal(2, seedAlone.Exit);
        Assert.Contains("--seed needs --cluster", seedAlone.Output, StringComparison.Ordinal);

        var badEndpoint = await FleetProcess.RunFleetAsync(Path.GetTempPath(), Timeout, "serve", "--cluster", "nowhere", "--store", "postgres:Host=127.0.0.1");
        Assert.Equal(2, badEndpoint.Exit);
        Assert.Contains("--cluster: 'nowhere' is not HOST:PORT", badEndpoint.Output, StringComparison.Ordinal);

        var looping = await FleetProcess.RunFleetAsync(Path.GetTempPath(), Timeout, "serve", "--cluster", node, "--store", "postgres:Host=127.0.0.1",
            "--gtfs", Path.Combine(RepoPaths.SampleData, "gtfs.zip"), "--replay", Path.Combine(RepoPaths.SampleData, "recording.hfp.gz"), "--loop");
        Assert.Equal(2, looping.Exit);
        Assert.Contains("--loop and --replay-start are for a single node", looping.Output, StringComparison.Ordinal);

        var noSchedule = await FleetProcess.RunFleetAsync(Path.GetTempPath(), Timeout, "serve", "--cluster", node, "--store", "postgres:Host=127.0.0.1",
            "--replay", Path.Combine(RepoPaths.SampleData, "recording.hfp.gz"));
        Assert.Equal(2, noSchedule.Exit);
        Assert.Contains("--cluster --replay needs --gtfs", noSchedule.Output, StringComparison.Ordinal);
    }

    private static IEnumerable<string> Members(JsonElement cluster) => cluster.GetProperty("members").EnumerateArray().Select(m => m.GetString()!);

    // Polls /api/health until its cluster section satisfies the condition; returns that section.
    private static async Task<JsonElement> PollClusterAsync(HttpClient http, string url, Func<JsonElement, bool> condition, string what, FleetProcess process, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + Timeout;
        var last = "(no answer)";
        while (DateTime.UtcNow < deadline)
        {
            Assert.False(process.HasExited, $"the node exited while waiting for {what}: {process.Output}");
            try
            {
                var health = await http.GetFromJsonAsync<JsonElement>(url + "/api/health", ct);
                if (health.TryGetProperty("cluster", out var cluster) && cluster.ValueKind == JsonValueKind.Object)
                {
                    last = cluster.GetRawText();
                    if (condition(cluster))
                    {
                        return cluster.Clone();
                    }
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
            }

            await Task.Delay(250, ct);
        }

        Assert.Fail($"timed out waiting for {what}; last cluster section: {last}\n{process.Output}");
        return default;
    }
}
