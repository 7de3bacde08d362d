using System.CommandLine;

namespace Fleet.Dashboard.Cli;

/// <summary>The <c>fleet</c> command line: one root command, one sub command per capability.</summary>
public static class FleetCli
{
    /// <summary>Name of the option that, on every command, prints a failure's stack trace too.</summary>
    public const string VerboseOption = "--verbose";

    /// <summary>Builds the root command with every sub command registered.</summary>
    public static RootCommand Build()
    {
        var root = new RootCommand(
            """
            Fleet: real-time analytics for vehicle fleets and public transit.
            Without a command, runs the platform on its embedded default (the bundled sample city replayed live).

            Example: fleet inspect recording.hfp.gz --json
            """);

        // One line per command; each lives in its own file.
        // (commands are registered here as they land)
        root.Subcommands.Add(InspectCommand.Create());
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(SubscribeCommand.Create());
        root.Subcommands.Add(ReplayCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(RecordCommand.Create());
        root.Subcommands.Add(GenerateCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(EvaluateCommand.Create());
        root.Subcommands.Add(MqttUserCommand.Create());

        root.Options.Add(new Option<bool>(VerboseOption) { Description = "On a failure, print the stack trace too.", Recursive = true });
        root.SetAction((parse, ct) => DefaultRun.RunAsync(ct));
        return root;
    }
}
