using System.IO.Compression;
using System.Text.Json;
using Fleet.Actors.Hosting;
using Fleet.Dashboard.Hosting;
using Fleet.Dashboard.Sources;
using Fleet.Testing;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace Fleet.Dashboard.Tests;

/// <summary>
/// Live sources with a store (<c>fleet serve --mqtt ... --store</c>): the HFP a broker delivers is tracked on the Akka.NET
/// partitions (region <c>live-partition</c>) and journaled, every event once.
/// </summary>
public sealed class LiveStoreTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    [Trait("Category", "Integration")]
    public async Task ServeMqttWithStore_SampleIntoBroker_TrackedOnThePartitionsEveryEventJournaledOnce()
    {
        var dir = Directory.CreateTempSubdirectory("fleet-live-store-").FullName;
        try
        {
            var lines = new List<string>(4000);
            await using (var gz = new GZipStream(File.OpenRead(Path.Combine(RepoPaths.SampleData, "recording.hfp.gz")), CompressionMode.Decompress))
            using (var text = new StreamReader(gz))
            {
                while (lines.Count < 4000 && await text.ReadLineAsync(Ct) is { } line)
                {
                    lines.Add(line);
                }
            }

            var file = Path.Combine(dir, "slice.hfp");
            await File.WriteAllLinesAsync(file, lines, Ct);
            var db = Path.Combine(dir, "store.db");
            await using var broker = await Mosquitto.StartAsync();
            await using var cluster = new TrackingCluster(new FleetAkkaOptions { Journal = JournalKind.Sqlite, Connection = db, KeepJournal = true });
            long events;
            {
                await using var host = await TestHost.StartAsync(network: GtfsNetwork.Load(Path.Combine(RepoPaths.SampleData, "gtfs.zip")), configure: s =>
                {
                    s.AddSingleton(cluster);
                    s.AddMqttSource(MqttSourceOptions.Parse(broker.Url.ToString(), ["/hfp/v2/journey/ongoing/#"]));
                });
                await PollAsync(async () => Source(await host.GetJsonAsync("api/health")).GetProperty("state").GetString() == "connected", "the MQTT source to connect");
                using var replay = FleetProcess.Start("replay", file, "--to", broker.Url.ToString().TrimEnd('/'), "--speed", "max");
                await PollAsync(() => Task.FromResult(replay.HasExited), $"the replay to finish: {replay.Output}");
                var sent = 0L;
                await PollAsync(async () =>
                {
                    var now = Source(await host.GetJsonAsync("api/health")).GetProperty("events").GetInt64();
                    var settled = now == sent && now > 3_000;
                    sent = now;
                    return settled;
                }, "the MQTT source to receive the slice");
                events = sent;
                await PollAsync(async () => FaultTests.ParseMetrics(await host.Http.GetStringAsync(new Uri("metrics", UriKind.Relative), Ct))
                    .GetValueOrDefault("fleet_tracking_queued_events", -1) == 0 && JournaledEvents(db) >= events, "the partitions to journal every event");

                var vehicles = (await host.GetJsonAsync("api/vehicles")).EnumerateArray().ToList();
                var onTrips = vehicles.Count(v => v.GetProperty("tripId").ValueKind == JsonValueKind.String && v.GetProperty("delaySeconds").ValueKind == JsonValueKind.Number);
                Assert.True(onTrips >= 10, $"{onTrips} of {vehicles.Count} vehicles on a trip with a delay");
                Assert.True(host.Live.PredictionCount > 0, "no predictions from the partitions");
                // Tracking's drop counters come from the partitions with a store, as from the engine without one.
                var metrics = FaultTests.ParseMetrics(await host.Http.GetStringAsync(new Uri("metrics", UriKind.Relative), Ct));
                Assert.True(metrics.ContainsKey("fleet_tracking_late_events_total"), "fleet_tracking_late_events_total missing");
                Assert.True(metrics.ContainsKey("fleet_tracking_unmatched_journeys_total"), "fleet_tracking_unmatched_journeys_total missing");
            }

            // Every event the source received, journaled once by the live partitions (no sequence numbers: live).
            Assert.Equal(events, JournaledEvents(db));
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static long JournaledEvents(string db)
    {
        try
        {
            using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT message FROM journal WHERE persistence_id LIKE 'live-partition-%' AND manifest = 'BA'";
            using var reader = command.ExecuteReader();
            long count = 0;
            while (reader.Read())
            {
                count += Fleet.Actors.Serialization.FleetSerializer.ReadBatchAccepted(reader.GetFieldValue<byte[]>(0)).Events.Length;
            }

            return count;
        }
        catch (SqliteException)
        {
            return 0; // not created yet
        }
    }

    private static JsonElement Source(JsonElement health) =>
        Assert.Single(health.GetProperty("sources").EnumerateArray(), s => s.GetProperty("kind").GetString() == "mqtt");

    private static async Task PollAsync(Func<Task<bool>> condition, string what)
    {
        var until = DateTime.UtcNow + Deadline;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < until, $"timed out waiting for {what}");
            await Task.Delay(200, Ct);
        }
    }
}
