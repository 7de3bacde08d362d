using System.CommandLine;

namespace Fleet.Dashboard.Cli;

/// <summary><c>fleet bench ...</c>: end-to-end benchmarks that need real processes (brokers, files), one sub command each.</summary>
internal static class BenchCommand
{
    /// <summary>Creates the parent command with its sub commands.</summary>
    public static Command Create()
    {
        var cmd = new Command("bench", """
            End-to-end benchmarks; figures go to docs/BENCHMARKS.md.

            Example: fleet bench mqtt --json
            """);
        cmd.Subcommands.Add(BenchMqttCommand.Create());
        cmd.Subcommands.Add(BenchActorsCommand.Create());
        cmd.Subcommands.Add(BenchReplayCommand.Create());
        cmd.Subcommands.Add(BenchHubCommand.Create());
        cmd.Subcommands.Add(BenchE2eCommand.Create());
        cmd.Subcommands.Add(BenchClusterCommand.Create());
        cmd.Subcommands.Add(BenchTrainersCommand.Create());
        return cmd;
    }
}
