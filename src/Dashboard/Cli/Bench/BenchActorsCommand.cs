using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Fleet.Actors.Benchmarks;
using Spectre.Console;

namespace Fleet.Dashboard.Cli;

/// <summary><c>fleet bench actors [--json] [--quick]</c>: the Akka.NET actor benchmarks (src/Actors/Fleet.Actors/Benchmarks).</summary>
internal static class BenchActorsCommand
{
    /// <summary>Creates the <c>actors</c> sub command of <c>fleet bench</c>.</summary>
    public static Command Create() => CreateActors();

    private static Command CreateActors()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object on stdout instead of a table" };
        var quick = new Option<bool>("--quick") { Description = "A tenth of every size: a smoke run, not a measurement" };
        var cmd = new Command("actors", """
            Runs the actor benchmarks on Akka.NET: vehicle events in batches through the shard region of 64 partitions
            into 100,000 vehicles' state, events journaled to SQLite (Akka.Persistence.Sql), recovery of 10,000
            vehicles x 100 events, memory per idle vehicle.

            Example: fleet bench actors --json
            """)
        {
            json,
            quick,
        };
        cmd.SetAction((parse, ct) => RunAkkaAsync(parse.GetValue(json), parse.GetValue(quick), Console.Out, ct));
        return cmd;
    }

    /// <summary>Runs the benchmarks on Akka.NET and writes the result (the same JSON fields); returns the exit code.</summary>
    public static async Task<int> RunAkkaAsync(bool json, bool quick, TextWriter output, CancellationToken cancellationToken)
    {
        var options = quick ? AkkaBenchmarkOptions.Quick() : new AkkaBenchmarkOptions();
        var progress = new Progress<string>(m => Console.Error.WriteLine($"fleet bench actors: {m}"));
        var result = await AkkaBenchmark.RunAsync(options, progress, cancellationToken).ConfigureAwait(false);
        if (json)
        {
            await output.WriteLineAsync(JsonSerializer.Serialize(new
            {
                runtime = "akka",
                messagesPerSecond = Math.Round(result.MessagesPerSecond),
                entities = options.Partitions,
                vehicles = result.Vehicles,
                persistedEventsPerSecond = Math.Round(result.PersistedEventsPerSecond),
                recoverySeconds10k = Math.Round(result.RecoverySeconds10k, 3),
                bytesPerIdleEntity = Math.Round(result.BytesPerIdleVehicle, 1),
            })).ConfigureAwait(false);
            return 0;
        }

        var table = new Table().AddColumn("measure (Akka.NET)").AddColumn(new TableColumn("result").RightAligned()).AddColumn("target");
        table.AddRow($"vehicle events into {result.Vehicles:N0} vehicles through {options.Partitions} sharded partitions", F(result.MessagesPerSecond, "N0") + " events/s", ">= 1,000,000 events/s");
        table.AddRow("events journaled to SQLite (Akka.Persistence.Sql, a row per batch)", F(result.PersistedEventsPerSecond, "N0") + " events/s", ">= 100,000 events/s");
        table.AddRow($"recovery of {options.RecoveryVehicles:N0} vehicles x {options.RecoveryEventsPerVehicle} events", F(result.RecoverySeconds10k, "N3") + " s", "< 3 s");
        table.AddRow("memory per idle vehicle (id included)", F(result.BytesPerIdleVehicle, "N1") + " bytes", "< 500 bytes");
        CliConsole.For(output).Write(table);
        return 0;
    }

    private static string F(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
}
