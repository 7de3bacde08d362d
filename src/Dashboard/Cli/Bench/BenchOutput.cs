namespace Fleet.Dashboard.Cli;

/// <summary>Where a bench command's progress lines go.</summary>
internal static class BenchOutput
{
    /// <summary>Writes a progress line: to stderr with <c>--json</c> (stdout carries only the JSON line), else to stdout.</summary>
    public static void Say(bool json, string line)
    {
        if (json)
        {
            Console.Error.WriteLine(line);
        }
        else
        {
            Console.Out.WriteLine(line);
        }
    }
}
