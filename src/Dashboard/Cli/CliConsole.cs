using Spectre.Console;

namespace Fleet.Dashboard.Cli;

/// <summary>Spectre consoles for the commands: colours and cursor moves only on a terminal, never into a pipe or file.</summary>
internal static class CliConsole
{
    /// <summary>A console writing to <paramref name="output"/>; plain text unless it is the terminal's stdout or stderr.</summary>
    public static IAnsiConsole For(TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var terminal = (ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected)
            || (ReferenceEquals(output, Console.Error) && !Console.IsErrorRedirected);
        return AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = terminal ? InteractionSupport.Detect : InteractionSupport.No,
        });
    }
}
