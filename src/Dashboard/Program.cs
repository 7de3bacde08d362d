using Fleet.Dashboard.Cli;

return await CliRunner.RunAsync(args).ConfigureAwait(false);
