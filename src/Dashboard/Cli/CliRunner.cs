using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.Json;
using Fleet.Gtfs;
using Fleet.Gtfs.Realtime;

namespace Fleet.Dashboard.Cli;

/// <summary>
/// The one error path of the <c>fleet</c> command line: a usage mistake prints what is wrong and exits with 2; a
/// failure (a file that cannot be read, a broken feed, a folder that cannot be written) prints one line naming the input
/// and the problem and exits with 1. A stack trace only with <c>--verbose</c>.
/// </summary>
/// <remarks>Exit codes: 0 success, 1 failure, 2 usage, 130 interrupted (Ctrl+C or SIGTERM before the command ended).</remarks>
public static class CliRunner
{
    /// <summary>Exit code of a failure: the input was understood but could not be processed.</summary>
    public const int Failure = 1;

    /// <summary>Exit code of a usage mistake: an unknown option, a missing or malformed value.</summary>
    public const int Usage = 2;

    /// <summary>Parses <paramref name="args"/>, runs the command and turns any error into one line on stderr.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var root = FleetCli.Build();
        try
        {
            args = ConfigFile.Expand(args);
        }
        catch (Exception ex) when (ex is InvalidDataException or FileNotFoundException)
        {
            await Console.Error.WriteLineAsync($"fleet serve: {ex.Message}").ConfigureAwait(false);
            return Usage;
        }

        var parse = root.Parse(args);
        var name = CommandName(parse);
        var verbose = parse.GetValue<bool>(FleetCli.VerboseOption);
        var usage = UsageErrors(parse);
        if (usage.Count > 0)
        {
            foreach (var message in usage)
            {
                await Console.Error.WriteLineAsync($"{name}: {message}").ConfigureAwait(false);
            }

            await Console.Error.WriteLineAsync($"See '{name} --help'.").ConfigureAwait(false);
            return Usage;
        }

        try
        {
            return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false }).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync($"{name}: interrupted").ConfigureAwait(false);
            return 130;
        }
#pragma warning disable CA1031 // The one place every failure of a command is turned into a message.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            var (code, message) = Describe(ex);
            await Console.Error.WriteLineAsync($"{name}: {message}").ConfigureAwait(false);
            if (verbose)
            {
                await Console.Error.WriteLineAsync(ex.ToString()).ConfigureAwait(false);
            }
            else if (code == Failure && !IsExpected(ex))
            {
                await Console.Error.WriteLineAsync($"(run '{name} ... --verbose' for the details)").ConfigureAwait(false);
            }

            return code;
        }
    }

    /// <summary>The message and exit code for a failure.</summary>
    public static (int Code, string Message) Describe(Exception ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        return ex switch
        {
            FileNotFoundException f => (Failure, $"file not found: {f.FileName ?? f.Message}"),
            DirectoryNotFoundException d => (Failure, $"folder not found: {d.Message}"),
            UnauthorizedAccessException u => (Failure, $"permission denied: {u.Message}"),
            GtfsFormatException g => (Failure, g.Message),
            GtfsRtFormatException r => (Failure, r.Message),
            InvalidDataException d => (Failure, $"unreadable data: {d.Message}"),
            JsonException j => (Failure, $"malformed JSON: {j.Message}"),
            IOException io => (Failure, io.Message),
            ArgumentException a => (Usage, a.Message),
            _ => (Failure, $"unexpected {ex.GetType().Name}: {ex.Message}"),
        };
    }

    private static bool IsExpected(Exception ex) => ex is IOException or UnauthorizedAccessException or GtfsFormatException
        or GtfsRtFormatException or InvalidDataException or JsonException or ArgumentException;

    // The parser's own errors, plus a token that looks like an option but was taken as an argument value (an unknown
    // option in front of a FILE argument is otherwise read as a file name).
    private static List<string> UsageErrors(ParseResult parse)
    {
        var errors = parse.Errors.Select(e => e.Message).ToList();
        foreach (var token in parse.Tokens)
        {
            if (token.Type == TokenType.Argument && token.Value.StartsWith("--", StringComparison.Ordinal) && token.Value.Length > 2)
            {
                errors.Add($"unknown option '{token.Value}'");
            }
        }

        return [.. errors.Distinct(StringComparer.Ordinal)];
    }

    private static string CommandName(ParseResult parse)
    {
        var names = new List<string>();
        for (var result = (SymbolResult?)parse.CommandResult; result is not null; result = result.Parent)
        {
            if (result is CommandResult c)
            {
                names.Add(c.Command is RootCommand ? "fleet" : c.Command.Name);
            }
        }

        names.Reverse();
        return names.Count == 0 ? "fleet" : string.Join(' ', names);
    }
}
