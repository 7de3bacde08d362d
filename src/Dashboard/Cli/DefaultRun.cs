namespace Fleet.Dashboard.Cli;

/// <summary>What <c>dotnet run --project src/Dashboard</c> does with no arguments.</summary>
internal static class DefaultRun
{
    /// <summary>Runs the platform on its embedded default.</summary>
    public static Task<int> RunAsync(CancellationToken cancellationToken) => ServeCommand.RunDefaultAsync(cancellationToken);
}
