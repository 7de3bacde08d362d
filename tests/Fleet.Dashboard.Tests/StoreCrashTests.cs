using System.Globalization;
using System.IO.Compression;
using System.Text.Json;
using Fleet.Testing;
using Microsoft.Data.Sqlite;

namespace Fleet.Dashboard.Tests;

/// <summary>
/// <c>fleet serve --store sqlite:...</c> killed with SIGKILL in the middle of a replay and started again on the same
/// store: the vehicles come back from the journal, the replay resumes, predictions resume, and no event is applied
/// twice (every journaled event carries its recording line as sequence number).
/// </summary>
public sealed class StoreCrashTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    [Fact]
    [Trait("Category", "Integration")]
    public async Task Serve_SigkillMidReplayThenRestartOnSameStore_ResumesAndAppliesEveryEventExactlyOnce()
    {
        var dir = Directory.CreateTempSubdirectory("fleet-crash-").FullName;
        try
        {
            var db = Path.Combine(dir, "store.db");
            await CrashAndResumeAsync(dir, "sqlite:" + db, () => File.Exists(db) ? ReadSequences(db) : []);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    [Trait("Category", "Integration")]
    public async Task ServePostgres_SigkillMidReplayThenRestartOnSameStore_ResumesAndAppliesEveryEventExactlyOnce()
    {
        await using var postgres = await PostgresServer.StartAsync();
        var dir = Directory.CreateTempSubdirectory("fleet-crash-pg-").FullName;
        try
        {
            await CrashAndResumeAsync(dir, "postgres:" + postgres.ConnectionString, () => ReadPostgresSequences(postgres.ConnectionString));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task CrashAndResumeAsync(string dir, string store, Func<Dictionary<string, List<long>>> readSequences)
    {
        var ct = TestContext.Current.CancellationToken;
        {
            // 12,000 lines from the busy middle of the sample city's recording (about 50 vehicles on the road).
            var recording = Path.Combine(dir, "slice.hfp");
            var lines = new List<string>();
            using (var gz = new GZipStream(File.OpenRead(Path.Combine(RepoPaths.SampleData, "recording.hfp.gz")), CompressionMode.Decompress))
            using (var reader = new StreamReader(gz))
            {
                for (var i = 0; i < 80_000 + 12_000 && reader.ReadLine() is { } line; i++)
                {
                    if (i >= 80_000)
                    {
                        lines.Add(line);
                    }
                }
            }

            await File.WriteAllLinesAsync(recording, lines, ct);
            var expected = ExpectedEventLines(lines);
            Assert.True(expected.Count > 11_000, $"only {expected.Count} HFP lines in the slice");

            string[] Args(string url) =>
            [
                "serve", "--replay", recording, "--gtfs", Path.Combine(RepoPaths.SampleData, "gtfs.zip"),
                "--store", store, "--speed", "100", "--urls", url,
                // The whole journal stays (no deletion behind snapshots), so every line can be checked in it below.
                "--keep-journal",
            ];

            // Run 1: killed once a few thousand events are durable.
            Dictionary<string, List<long>> beforeKill;
            using (var first = FleetProcess.Start(Args(FleetProcess.FreeUrl())))
            {
                await PollAsync(() => CountEvents(readSequences) >= 3_000, "3,000 events journaled by run 1", first, ct);
                first.Kill();
                beforeKill = readSequences();
            }

            var durableBefore = beforeKill.Values.Sum(l => l.Count);
            Assert.True(durableBefore < expected.Count, "run 1 finished before it was killed; nothing to resume");

            // Run 2 on the same store: reads the file from the start; the vehicles (recovered in their partitions from the
            // snapshot and the journal's tail) skip what they applied.
            var url = FleetProcess.FreeUrl();
            using var second = FleetProcess.Start(Args(url));
            using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) };
            await PollAsync(() => readSequences().Values.SelectMany(l => l).Count(expected.Contains) >= expected.Count,
                $"all {expected.Count} HFP lines journaled after the restart", second, ct);
            var metrics = await PollMetricsAsync(http, m => m.GetValueOrDefault("fleet_predictions_total") > 0
                && m.GetValueOrDefault("fleet_tracking_already_applied_total") >= durableBefore, second, ct);

            // Every event that was durable before the kill was offered again and skipped by its recovered vehicle.
            Assert.Equal(durableBefore, (long)metrics["fleet_tracking_already_applied_total"]);
            Assert.True(metrics["fleet_predictions_total"] > 0, "no predictions after the restart");
            second.Kill();

            // The journal: per vehicle, strictly increasing line numbers (nothing applied twice); every HFP line once.
            // (A GTFS-RT snapshot line gives events to several vehicles, each with that line's number.)
            var after = readSequences();
            var seen = new HashSet<long>();
            foreach (var (vehicle, sequence) in after)
            {
                for (var i = 1; i < sequence.Count; i++)
                {
                    Assert.True(sequence[i] > sequence[i - 1], $"{vehicle}: line {sequence[i]} applied after line {sequence[i - 1]}");
                }

                foreach (var s in sequence.Where(expected.Contains))
                {
                    Assert.True(seen.Add(s), $"HFP line {s} applied twice");
                }

                if (beforeKill.TryGetValue(vehicle, out var old))
                {
                    Assert.Equal(old, sequence.Take(old.Count));
                }
            }

            Assert.Equal(expected.Order(), seen.Order());
        }
    }

    // Counted without our parser: a line whose topic starts with /hfp/ and whose payload is well-formed JSON.
    // (The sample city has deliberately malformed lines; they are rejected, not journaled.)
    private static HashSet<long> ExpectedEventLines(List<string> lines)
    {
        var result = new HashSet<long>();
        for (var i = 0; i < lines.Count; i++)
        {
            var parts = lines[i].Split(' ', 3);
            if (parts.Length < 3 || !parts[1].StartsWith("/hfp/", StringComparison.Ordinal))
            {
                continue;
            }

            try
            {
                using var _ = JsonDocument.Parse(parts[2]);
                result.Add(i + 1);
            }
            catch (JsonException)
            {
            }
        }

        return result;
    }

    // Read straight from Akka.Persistence.Sql's journal table (each row a partition's BatchAccepted, in Fleet's binary
    // format): opening the store through Akka would start a second writer on a file the child process may still hold.
    private static SqliteConnection Open(string db)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        return connection;
    }

    private static long CountEvents(Func<Dictionary<string, List<long>>> readSequences)
    {
        try
        {
            return readSequences().Values.Sum(l => l.Count);
        }
        catch (Exception ex) when (ex is SqliteException or Npgsql.PostgresException)
        {
            return 0; // the journal is not created yet
        }
    }

    private const string JournalQuery = "SELECT message FROM journal WHERE persistence_id LIKE 'vehicle-partition%' AND manifest = 'BA' "
        + "ORDER BY persistence_id, sequence_number";

    // Per vehicle, the line numbers its partitions journaled (and applied), in the order they were applied.
    private static Dictionary<string, List<long>> ReadSequences(string db)
    {
        using var connection = Open(db);
        using var command = connection.CreateCommand();
        command.CommandText = JournalQuery;
        using var reader = command.ExecuteReader();
        return Sequences(reader);
    }

    private static Dictionary<string, List<long>> ReadPostgresSequences(string postgres)
    {
        using var connection = new Npgsql.NpgsqlConnection(postgres);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = JournalQuery;
        using var reader = command.ExecuteReader();
        return Sequences(reader);
    }

    private static Dictionary<string, List<long>> Sequences(System.Data.Common.DbDataReader reader)
    {
        var result = new Dictionary<string, List<long>>(StringComparer.Ordinal);
        while (reader.Read())
        {
            var batch = Fleet.Actors.Serialization.FleetSerializer.ReadBatchAccepted(reader.GetFieldValue<byte[]>(0));
            for (var i = 0; i < batch.Events.Length; i++)
            {
                var id = batch.Events[i].VehicleId;
                if (!result.TryGetValue(id, out var list))
                {
                    result[id] = list = [];
                }

                list.Add(batch.Sequences[i]);
            }
        }

        return result;
    }

    private static async Task PollAsync(Func<bool> done, string what, FleetProcess process, CancellationToken ct)
    {
        var until = DateTime.UtcNow + Deadline;
        while (!done())
        {
            Assert.False(process.HasExited, $"fleet exited while waiting for {what}:\n{process.Output}");
            Assert.True(DateTime.UtcNow < until, $"timed out waiting for {what}:\n{process.Output}");
            await Task.Delay(250, ct);
        }
    }

    private static async Task<Dictionary<string, double>> PollMetricsAsync(
        HttpClient http, Func<Dictionary<string, double>, bool> done, FleetProcess process, CancellationToken ct)
    {
        var until = DateTime.UtcNow + Deadline;
        while (true)
        {
            try
            {
                var metrics = PrometheusText.Parse(await http.GetStringAsync(new Uri("/metrics", UriKind.Relative), ct));
                if (done(metrics))
                {
                    return metrics;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }

            Assert.False(process.HasExited, $"fleet exited while waiting for /metrics:\n{process.Output}");
            Assert.True(DateTime.UtcNow < until, $"timed out waiting for /metrics:\n{process.Output}");
            await Task.Delay(100, ct);
        }
    }
}
