using Fleet.Dashboard.Cli;

return await FleetCli.Build().Parse(args).InvokeAsync().ConfigureAwait(false);
