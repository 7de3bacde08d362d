namespace Fleet.Dashboard.Cli;

/// <summary>What <c>dotnet run --project src/Dashboard</c> does with no arguments.</summary>
internal static class DefaultRun
{
    /// <summary>Runs the platform on its embedded default.</summary>
    public static Task<int> RunAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Console.Error.WriteLine("fleet: the default run needs sample-data/ (see sample-data/README.md).");
        return Task.FromResult(1);
    }
}
