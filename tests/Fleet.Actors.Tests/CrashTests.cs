using System.Diagnostics;
using System.Globalization;
using Fleet.Actors.Persistence;

namespace Fleet.Actors.Tests;

[Trait("Category", "Integration")]
public sealed class CrashTests : IDisposable
{
    private const int Entities = 20;
    private const int AcksBeforeKill = 3000;
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("fleet-crash-");

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Delete(recursive: true);
    }

    [Fact]
    public async Task SqliteJournal_ChildKilledWithSigkillUnderLoad_EveryAcknowledgedEventRecoveredInOrderOnce()
    {
        var db = Path.Combine(_dir.FullName, "journal.db");
        var acked = new Dictionary<string, int>(StringComparer.Ordinal);
        var total = 0;

        using (var child = StartChild(db))
        {
            try
            {
                // Read acks until enough arrived; an external process, so a deadline is the way to wait.
                var deadline = Stopwatch.StartNew();
                while (total < AcksBeforeKill)
                {
                    var line = await child.StandardOutput.ReadLineAsync(TestContext.Current.CancellationToken)
                        .AsTask().WaitAsync(TimeSpan.FromSeconds(60) - deadline.Elapsed, TestContext.Current.CancellationToken);
                    if (line is null)
                    {
                        Assert.Fail($"child exited after {total} acks: {await child.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken)}");
                    }

                    if (!line.StartsWith("ack ", StringComparison.Ordinal))
                    {
                        continue;
                    }

                    var parts = line.Split(' ');
                    var value = int.Parse(parts[2], CultureInfo.InvariantCulture);
                    acked.TryGetValue(parts[1], out var previous);
                    Assert.Equal(previous + 1, value);
                    acked[parts[1]] = value;
                    total++;
                }
            }
            finally
            {
                // Process.Kill sends SIGKILL on Unix: no shutdown hook, no flush, nothing graceful.
                child.Kill();
                await child.WaitForExitAsync(TestContext.Current.CancellationToken);
            }
        }

        Assert.Equal(Entities, acked.Count);

        await using var journal = new SqliteJournal(new SqliteJournalOptions { Path = db });
        var stored = 0;
        foreach (var (entity, lastAck) in acked)
        {
            var collector = new ReplayCollector();
            await journal.ReplayAsync("crash/" + entity, 1, collector, TestContext.Current.CancellationToken);
            var values = collector.Events.Select(e => JsonPersistenceSerializer<int>.Default.Deserialize(e.Payload)).ToArray();

            // Sequence numbers and values both run 1..n: nothing reordered, duplicated or missing in between.
            Assert.Equal(Enumerable.Range(1, values.Length).Select(i => (long)i), collector.Events.Select(e => e.SequenceNr));
            Assert.Equal(Enumerable.Range(1, values.Length), values);
            Assert.True(values.Length >= lastAck, $"entity {entity}: acknowledged {lastAck} events, journal has {values.Length}");
            stored += values.Length;
        }

        Assert.True(stored >= total);
    }

    private static Process StartChild(string db)
    {
        // tests/artifacts/bin/Fleet.Actors.Tests/<config>/ -> tests/artifacts/bin/Fleet.Actors.CrashChild/<config>/
        var own = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var childDll = Path.Combine(own.Parent!.Parent!.FullName, "Fleet.Actors.CrashChild", own.Name, "Fleet.Actors.CrashChild.dll");
        Assert.True(File.Exists(childDll), $"crash child not built: {childDll}");
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(childDll);
        info.ArgumentList.Add(db);
        info.ArgumentList.Add(Entities.ToString(CultureInfo.InvariantCulture));
        return Process.Start(info) ?? throw new InvalidOperationException("could not start the crash child");
    }
}
